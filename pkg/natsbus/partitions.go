package natsbus

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamPartitions is the role of the stream that holds the predictions
// again under a partition token, for services that spread models over
// processes (nats.partitions above 1): <PREFIX>_PARTITIONS.
const StreamPartitions = "PARTITIONS"

// KindPartitioned is the second token of the partitions stream's subjects:
// <prefix>.p.<partition>.<model>. Internal: nobody publishes there.
const KindPartitioned = "p"

// Partitioned returns <prefix>.p.<partition>.*: the subjects of one
// partition's models in the partitions stream.
func (s Subjects) Partitioned(partition int) string {
	return s.Prefix + "." + KindPartitioned + "." + strconv.Itoa(partition) + ".*"
}

// PartitionedModel returns the model token of a subject of the partitions
// stream, or "" when the subject has another shape.
func (s Subjects) PartitionedModel(subject string) string {
	rest, ok := strings.CutPrefix(subject, s.Prefix+"."+KindPartitioned+".")
	if !ok {
		return ""
	}
	_, model, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(model, ".") {
		return ""
	}
	return model
}

// PartitionOf returns the partition of model among n: the one JetStream's
// subject transform {{partition(n,1)}} gives its subject (FNV-1a of the
// model token, modulo n), so a service can tell its own models'
// checkpoints from the others'.
func PartitionOf(model string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(model))
	return int(h.Sum32() % uint32(n))
}

// PartitionsConfig returns the configuration of the partitions stream: it
// sources the predictions stream and transforms each subject
// <prefix>.predictions.<model> into <prefix>.p.<partition>.<model>. The
// contract's subjects stay as they are (live subscribers, `tail --since`,
// the archive read the predictions stream); only partitioned consumers
// read this one.
func (s Subjects) PartitionsConfig(opts StreamOptions) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.StreamName(StreamPartitions),
		Description: fmt.Sprintf("predictions by partition of their model (%d partitions), for services that spread models over processes", opts.Partitions),
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      opts.Retention,
		Duplicates:  opts.Duplicates,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, opts.Replicas),
		Sources: []*jetstream.StreamSource{{
			Name: s.StreamName(StreamPredictions),
			SubjectTransforms: []jetstream.SubjectTransformConfig{{
				Source:      s.All(KindPredictions),
				Destination: fmt.Sprintf("%s.%s.{{partition(%d,1)}}.{{wildcard(1)}}", s.Prefix, KindPartitioned, opts.Partitions),
			}},
		}},
	}
}
