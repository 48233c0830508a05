package canary

import "github.com/lookout-ml/lookout/pkg/service"

// Component is the canary service: section `canary` of the configuration
// file. It keeps per-model state, so each model is worked on in one process
// at a time: all models under one lease, or, with nats.partitions above 1,
// one partition of the models per lease, spread over the canary processes.
var Component = service.NewComponent("canary", DefaultConfig, New, service.AsPartitioned())
