package feedback

import "github.com/lookout-ml/lookout/pkg/service"

// Component is the feedback service: section `feedback` of the
// configuration file. It keeps per-model state, so each model is worked on
// in one process at a time: all models under one lease, or, with
// nats.partitions above 1, one partition of the models per lease, spread
// over the feedback processes.
var Component = service.NewComponent("feedback", DefaultConfig, New, service.AsPartitioned())
