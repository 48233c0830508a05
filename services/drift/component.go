package drift

import "github.com/lookout-ml/lookout/pkg/service"

// Component is the drift service: section `drift` of the configuration
// file. It keeps per-model state, so each model is worked on by one process
// at a time: all models under one lease, or, with nats.partitions above 1,
// one partition of the models per lease, spread over the drift processes.
var Component = service.NewComponent("drift", DefaultConfig, New, service.AsPartitioned())
