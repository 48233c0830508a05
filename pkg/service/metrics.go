package service

import (
	"reflect"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// sharedMetrics holds each registry's metrics of each kind.
var sharedMetrics sync.Map // metricsKey -> value

type metricsKey struct {
	reg  prometheus.Registerer
	kind reflect.Type
}

var makeMetricsMu sync.Mutex

// SharedMetrics returns the metrics of type T that make registers in reg,
// made once per registry: a service built again (for each lease it takes,
// for each partition) counts into the same metrics instead of registering
// them twice, which Prometheus refuses. A nil reg makes unregistered ones.
func SharedMetrics[T any](reg prometheus.Registerer, make func(prometheus.Registerer) T) T {
	if reg == nil {
		return make(nil)
	}
	key := metricsKey{reg, reflect.TypeFor[T]()}
	if m, ok := sharedMetrics.Load(key); ok {
		return m.(T)
	}
	makeMetricsMu.Lock()
	defer makeMetricsMu.Unlock()
	if m, ok := sharedMetrics.Load(key); ok {
		return m.(T)
	}
	m := make(reg)
	sharedMetrics.Store(key, m)
	return m
}
