package canary

import "github.com/lookout-ml/lookout/pkg/service"

// Component is the canary service: section `canary` of the configuration
// file. It keeps per-model state, so it runs under a lease, in one process
// at a time.
var Component = service.NewComponent("canary", DefaultConfig, New, service.AsSingleton())
