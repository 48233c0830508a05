package drift

import "github.com/lookout-ml/lookout/pkg/service"

// Component is the drift service: section `drift` of the configuration
// file. It keeps per-model state, so it runs under a lease, in one process
// at a time.
var Component = service.NewComponent("drift", DefaultConfig, New, service.AsSingleton())
