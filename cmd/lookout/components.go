package main

import (
	"github.com/lookout-ml/lookout/pkg/service"
	"github.com/lookout-ml/lookout/services/alert"
	"github.com/lookout-ml/lookout/services/archive"
	"github.com/lookout-ml/lookout/services/canary"
	"github.com/lookout-ml/lookout/services/drift"
	"github.com/lookout-ml/lookout/services/feedback"
	"github.com/lookout-ml/lookout/services/ingest"
)

// components lists every service in the order `lookout run` starts them
// and validates their sections. Each package declares its component (name,
// YAML section, defaults, validation, constructor, whether it runs under a
// lease), so a new service is its package and one line here.
// docker-compose.yml has one service for each (a test checks it).
var components = []*service.Component{
	ingest.Component,
	archive.Component,
	drift.Component,
	canary.Component,
	alert.Component,
	feedback.Component,
}

// componentNames returns the names of the components, in order.
func componentNames() []string {
	names := make([]string, len(components))
	for i, c := range components {
		names[i] = c.Name()
	}
	return names
}
