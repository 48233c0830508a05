// Package service defines what every Lookout service is given and what it
// must do, so that `lookout run` can start any set of them together.
package service

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// Env is what a service runs against. It is built once in `lookout run`.
type Env struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Subjects natsbus.Subjects
	Log      *zap.Logger
	// Metrics is where the service registers its Prometheus collectors.
	Metrics prometheus.Registerer
	// DataDir is the local folder for files the service owns (the archive).
	DataDir string
	// Health is where the service's consumers report their state for
	// /healthz; nil reports nowhere.
	Health *Health
	// Stored decodes what the predictions stream holds, once per process
	// for every service that reads it; nil decodes every time.
	Stored *event.Stored
	// Runs returns the training run recorded for a model version
	// (pkg/versions), or ""; nil knows none.
	Runs func(model, version string) string
	// Partitions is nats.partitions: how many partitions the models of a
	// partitioned component are spread over (1: none, the component is a
	// singleton).
	Partitions int
	// Partition is the partition a partitioned component's service works
	// on; -1 (or Partitions <= 1) means all models.
	Partition int
}

// Partitioned says whether the service works on one partition of the
// models, Partition.
func (e Env) Partitioned() bool { return e.Partitions > 1 && e.Partition >= 0 }

// Service is one long-running part of Lookout.
type Service interface {
	// Run does the service's work until ctx is cancelled, then finishes or
	// hands back its in-flight work and returns nil. An error means the
	// service could not go on.
	Run(ctx context.Context) error
}

// Func adapts a function to Service.
type Func func(ctx context.Context) error

// Run calls f.
func (f Func) Run(ctx context.Context) error { return f(ctx) }

// With returns a copy of env whose logger is named for the service.
func (e Env) With(name string) Env {
	e.Log = e.Log.Named(name)
	return e
}
