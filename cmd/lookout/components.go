package main

import (
	"os"
	"path/filepath"

	"github.com/lookout-ml/lookout/pkg/service"
	"github.com/lookout-ml/lookout/services/alert"
	"github.com/lookout-ml/lookout/services/archive"
	"github.com/lookout-ml/lookout/services/canary"
	"github.com/lookout-ml/lookout/services/drift"
	"github.com/lookout-ml/lookout/services/feedback"
	"github.com/lookout-ml/lookout/services/ingest"
)

// component is a service that `lookout run` can start, by name.
type component struct {
	name  string
	build func(env service.Env, cfg Config) (service.Service, error)
}

// components lists every service in the order `lookout run` starts them.
// docker-compose.yml has one service for each (a test checks it). Ingest
// scales out by itself (one shared consumer); the archive keeps its journal
// in the local data folder, so it runs once per folder; the others are
// singletons with standbys.
var components = []component{
	{"ingest", func(env service.Env, cfg Config) (service.Service, error) {
		return ingest.New(env, cfg.Ingest), nil
	}},
	{"archive", func(env service.Env, cfg Config) (service.Service, error) {
		return archive.New(env, cfg.Archive)
	}},
	{"drift", func(env service.Env, cfg Config) (service.Service, error) {
		svc, err := drift.New(env, cfg.Drift)
		return singleton(env, "drift", svc, err)
	}},
	{"canary", func(env service.Env, cfg Config) (service.Service, error) {
		svc, err := canary.New(env, cfg.Canary)
		return singleton(env, "canary", svc, err)
	}},
	{"alert", func(env service.Env, cfg Config) (service.Service, error) {
		svc, err := alert.New(env, cfg.Alert)
		return singleton(env, "alert", svc, err)
	}},
	{"feedback", func(env service.Env, cfg Config) (service.Service, error) {
		svc, err := feedback.New(env, cfg.Feedback)
		return singleton(env, "feedback", svc, err)
	}},
}

// singleton wraps a service that keeps per-model state so that one process
// at a time runs it, however many run `--only` it: the others stand by
// (see service.Singleton). The service is built first, in every process, so
// a bad configuration fails at start.
func singleton(env service.Env, name string, svc service.Service, err error) (service.Service, error) {
	if err != nil {
		return nil, err
	}
	return &service.Singleton{Env: env, Name: name, Service: svc, Holder: holder(env)}, nil
}

// holder names this process in singleton leases: its host and data folder,
// so that a process restarted after a crash takes its leases back at once.
func holder(env service.Env) string {
	host, _ := os.Hostname()
	dir, err := filepath.Abs(env.DataDir)
	if err != nil {
		dir = env.DataDir
	}
	return host + ":" + dir
}

func componentNames() []string {
	names := make([]string, len(components))
	for i, c := range components {
		names[i] = c.name
	}
	return names
}
