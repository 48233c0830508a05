package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream roles. Each has one JetStream stream, named <PREFIX>_<ROLE>.
const (
	StreamIngest      = "INGEST"
	StreamFeedback    = "FEEDBACK"
	StreamPredictions = "PREDICTIONS"
	StreamRejected    = "REJECTED"
	StreamReports     = "REPORTS"
	StreamAlerts      = "ALERTS"
)

// StreamOptions tune the streams Lookout creates.
type StreamOptions struct {
	// Retention is how long predictions, rejections, reports and alerts
	// are kept in JetStream (the archive keeps predictions for good).
	Retention time.Duration
	// Duplicates is the window in which a repeated Nats-Msg-Id is dropped.
	Duplicates time.Duration
	// Replicas for clustered deployments; 0 or 1 on a single server.
	Replicas int
	// Partitions: above 1, the partitions stream is made too (see
	// PartitionsConfig).
	Partitions int
}

// DefaultStreamOptions returns options for a single server.
func DefaultStreamOptions() StreamOptions {
	return StreamOptions{Retention: 7 * 24 * time.Hour, Duplicates: 10 * time.Minute, Replicas: 1}
}

// StreamName returns the name of the stream for role under this prefix.
func (s Subjects) StreamName(role string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(s.Prefix)) + "_" + role
}

// StreamConfigs returns the configuration of every Lookout stream.
func (s Subjects) StreamConfigs(opts StreamOptions) []jetstream.StreamConfig {
	if opts.Replicas < 1 {
		opts.Replicas = 1
	}
	limits := func(role, description string, kinds ...string) jetstream.StreamConfig {
		subjects := make([]string, len(kinds))
		for i, k := range kinds {
			subjects[i] = s.All(k)
		}
		return jetstream.StreamConfig{
			Name:        s.StreamName(role),
			Description: description,
			Subjects:    subjects,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      opts.Retention,
			Duplicates:  opts.Duplicates,
			Storage:     jetstream.FileStorage,
			Replicas:    opts.Replicas,
			// Readers read history with direct gets (see ReadHistory).
			AllowDirect: true,
		}
	}
	ingest := limits(StreamIngest, "raw prediction events from clients, until ingest has handled them", KindIngest)
	// Work queue: a message leaves the stream once ingest acknowledges it,
	// which it does only after the validated copy (or the rejection) is
	// stored in another stream.
	ingest.Retention = jetstream.WorkQueuePolicy
	feedback := limits(StreamFeedback, "feedback and ground-truth labels from clients", KindFeedback)
	configs := []jetstream.StreamConfig{
		ingest,
		feedback,
		limits(StreamPredictions, "validated, normalised predictions", KindPredictions),
		limits(StreamRejected, "rejected input with its reasons", KindRejected),
		limits(StreamReports, "drift, canary and performance reports", KindDrift, KindCanary, KindPerformance),
		limits(StreamAlerts, "alert events, firing and resolved", KindAlerts),
	}
	if opts.Partitions > 1 {
		configs = append(configs, s.PartitionsConfig(opts))
	}
	return configs
}

// EnsureStreams creates Lookout's streams, or updates them to the current
// configuration. It is safe to call from several processes at once.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, subjects Subjects, opts StreamOptions) error {
	for _, cfg := range subjects.StreamConfigs(opts) {
		err := Retry(ctx, nil, "stream "+cfg.Name, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, cfg)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// Replicas returns how many replicas Lookout's streams have in this
// deployment (those of the predictions stream, set by EnsureStreams from
// nats.replicas), so that the buckets services create beside them are as
// durable. It returns 1 when the stream cannot be read.
func Replicas(ctx context.Context, js jetstream.JetStream, subjects Subjects) int {
	r, err := StreamReplicas(ctx, js, subjects)
	if err != nil {
		return 1
	}
	return r
}

// StreamReplicas is Replicas with its error: in a cluster a bucket made
// while the stream cannot be read (a leader election) must not silently
// get one replica. A missing stream is 1 replica, not an error.
func StreamReplicas(ctx context.Context, js jetstream.JetStream, subjects Subjects) (int, error) {
	stream, err := js.Stream(ctx, subjects.StreamName(StreamPredictions))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("replicas: %w", err)
	}
	return max(1, stream.CachedInfo().Config.Replicas), nil
}
