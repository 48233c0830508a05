package service

import "time"

// NewTestSingleton returns a Singleton that builds its service with fresh
// for each lease, as components' singletons do.
func NewTestSingleton(env Env, name string, ttl time.Duration, fresh func() (Service, error)) *Singleton {
	return &Singleton{Env: env, Name: name, TTL: ttl, fresh: fresh}
}
