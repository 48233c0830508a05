package feedback

import "github.com/lookout-ml/lookout/pkg/service"

// Component is the feedback service: section `feedback` of the configuration
// file. It keeps per-model state, so it runs under a lease, in one process
// at a time.
var Component = service.NewComponent("feedback", DefaultConfig, New, service.AsSingleton())
