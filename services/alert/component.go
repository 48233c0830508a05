package alert

import "github.com/lookout-ml/lookout/pkg/service"

// Component is the alert service: section `alert` of the configuration
// file. It keeps per-model state, so it runs under a lease, in one process
// at a time.
var Component = service.NewComponent("alert", DefaultConfig, New, service.AsSingleton())
