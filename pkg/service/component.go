package service

import (
	"fmt"
	"os"
	"path/filepath"
)

// Config is a service's configuration: one YAML section of the file.
// Validate names what is wrong by the key path relative to the section
// (`window: must be positive, got -5s`), one error per problem, joined with
// errors.Join; the caller prefixes the section.
type Config interface {
	Validate() error
}

// Component describes one service that `lookout run` can start: its name
// (for --only, health and its lease), the YAML section it reads, its
// defaults, how to build it and whether it runs as a singleton. Each
// service package declares its own, so that adding a service is its
// package plus one line in the list `lookout run` starts.
type Component struct {
	name        string
	section     string
	singleton   bool
	partitioned bool
	defaults    func() Config
	build       func(env Env, cfg Config) (Service, error)
}

// ComponentOption changes a Component made by NewComponent.
type ComponentOption func(*Component)

// AsSingleton makes the component run in one process at a time under a
// lease (see Singleton); for services that keep per-model state.
func AsSingleton() ComponentOption {
	return func(c *Component) { c.singleton = true }
}

// AsPartitioned makes the component a singleton that, with
// nats.partitions above 1, runs one service per partition of the models,
// each under a lease of its own, spread over the processes that run it
// (see Partitioned).
func AsPartitioned() ComponentOption {
	return func(c *Component) { c.singleton, c.partitioned = true, true }
}

// InSection makes the component read the YAML section named section
// instead of the one named like the component.
func InSection(section string) ComponentOption {
	return func(c *Component) { c.section = section }
}

// NewComponent describes a service named name whose configuration is a C,
// defaults gives the values of absent keys and build makes the service
// from a validated configuration.
func NewComponent[C Config, S Service](name string, defaults func() C, build func(env Env, cfg C) (S, error), opts ...ComponentOption) *Component {
	c := &Component{
		name:     name,
		section:  name,
		defaults: func() Config { return defaults() },
		build: func(env Env, cfg Config) (Service, error) {
			typed, ok := cfg.(C)
			if !ok {
				// A wiring mistake, not bad input: the loader decodes each
				// section into the type DefaultConfig returned.
				return nil, fmt.Errorf("config is a %T, want a %T", cfg, *new(C))
			}
			svc, err := build(env, typed)
			if err != nil {
				return nil, err
			}
			return svc, nil
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Name is the component's name: for --only, /healthz and its lease.
func (c *Component) Name() string { return c.name }

// Section is the top-level YAML key of the component's configuration.
func (c *Component) Section() string { return c.section }

// IsSingleton says whether the component runs under a lease.
func (c *Component) IsSingleton() bool { return c.singleton }

// DefaultConfig returns a fresh copy of the component's defaults; its
// dynamic type is the one Build expects, and the one the loader decodes
// the section into.
func (c *Component) DefaultConfig() Config { return c.defaults() }

// Build makes the service from cfg, which must have the dynamic type of
// DefaultConfig. A singleton is built first, in every process, so that a
// bad configuration fails at start, and then wrapped so that one process
// at a time runs it, however many run it: the others stand by.
func (c *Component) Build(env Env, cfg Config) (Service, error) {
	if c.partitioned && env.Partitions > 1 {
		// Built once here so that a bad configuration fails at start.
		env.Partition = 0
		if _, err := c.build(env, cfg); err != nil {
			return nil, err
		}
		return &Partitioned{Env: env, Name: c.name, Holder: LeaseHolder(env.DataDir),
			Build: func(env Env) (Service, error) { return c.build(env, cfg) }}, nil
	}
	env.Partition = -1
	svc, err := c.build(env, cfg)
	if err != nil {
		return nil, err
	}
	if !c.singleton {
		return svc, nil
	}
	return &Singleton{Env: env, Name: c.name, Service: svc, Holder: LeaseHolder(env.DataDir),
		fresh: func() (Service, error) { return c.build(env, cfg) }}, nil
}

// LeaseHolder names this process in singleton leases: its host and data
// folder, so that a process restarted after a crash takes its leases back
// at once.
func LeaseHolder(dataDir string) string {
	host, _ := os.Hostname()
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		dir = dataDir
	}
	return host + ":" + dir
}
