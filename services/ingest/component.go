package ingest

import "github.com/lookout-ml/lookout/pkg/service"

// Component is the ingest service: section `ingest` of the
// configuration file. It scales out by itself (its processes share one
// consumer).
var Component = service.NewComponent("ingest", DefaultConfig, func(env service.Env, cfg Config) (*Service, error) {
	return New(env, cfg), nil
})
