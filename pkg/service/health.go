package service

import (
	"maps"
	"sync"
)

// Health is what /healthz reports: the state of each part of a process
// that can fail while the process goes on (a service, a consumer). A part
// is healthy once it reported nil and until it reports an error.
type Health struct {
	mu    sync.Mutex
	parts map[string]error
}

// NewHealth returns an empty Health.
func NewHealth() *Health { return &Health{parts: make(map[string]error)} }

// Set records the state of one part: nil for healthy.
func (h *Health) Set(part string, err error) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.parts[part] = err
}

// Remove forgets a part, for one that stopped on purpose.
func (h *Health) Remove(part string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.parts, part)
}

// Reporter returns a function that sets part's state, for code that must
// not know about Health (the JetStream consumers).
func (h *Health) Reporter(part string) func(error) {
	return func(err error) { h.Set(part, err) }
}

// Snapshot returns each part's state: "ok" or its error's text. ok is
// false when any part is failing.
func (h *Health) Snapshot() (parts map[string]string, ok bool) {
	if h == nil {
		return map[string]string{}, true
	}
	h.mu.Lock()
	states := maps.Clone(h.parts)
	h.mu.Unlock()
	parts = make(map[string]string, len(states))
	ok = true
	for part, err := range states {
		if err != nil {
			parts[part] = err.Error()
			ok = false
			continue
		}
		parts[part] = "ok"
	}
	return parts, ok
}
