package feedback

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/natsbus"
)

// maxOpenSeqs bounds what a stored HeaderOpen may expand to; a header past
// it was not written by this service and is ignored.
const maxOpenSeqs = 1 << 20

// record returns the model's progress as it is once w's report is stored:
// HeaderDone and HeaderOpen. It forgets open messages at or below the
// consumer's acknowledgement floor that are not held: those were
// acknowledged (rejected, or reported by an earlier process).
func (s *Service) record(model string, w *window) (upTo uint64, open string) {
	p := s.progress[model]
	if p == nil {
		return w.lastSeq, ""
	}
	inWindow := make(map[uint64]struct{}, len(w.seqs))
	for _, seq := range w.seqs {
		inWindow[seq] = struct{}{}
	}
	floor := s.ackFloor()
	var seqs []uint64
	for seq := range p.open {
		if _, ok := inWindow[seq]; ok {
			continue
		}
		if _, held := s.held[seq]; !held && seq <= floor {
			delete(p.open, seq)
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	upTo, open = encodeOpen(p.upTo, seqs)
	if upTo < p.upTo {
		s.env.Log.Warn("feedback: too many open messages to record; a restart may count some reported feedback again",
			zap.String("model", model), zap.Int("open", len(seqs)), zap.Uint64("recorded_up_to", upTo))
	}
	return upTo, open
}

// encodeOpen writes sorted sequences as "a,b-c,...", at most maxOpenRanges
// ranges. When they do not fit, upTo is lowered to just below the first
// range left out, so that what the record says stays true.
func encodeOpen(upTo uint64, seqs []uint64) (uint64, string) {
	var b strings.Builder
	ranges := 0
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if ranges == maxOpenRanges {
			return seqs[i] - 1, b.String()
		}
		if ranges > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(seqs[i], 10))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.FormatUint(seqs[j], 10))
		}
		ranges++
		i = j + 1
	}
	return upTo, b.String()
}

// parseProgress reads a report's progress headers; nil without them (a
// report from before they existed).
func parseProgress(h nats.Header) (*progress, error) {
	done := h.Get(HeaderDone)
	if done == "" {
		return nil, nil
	}
	upTo, err := strconv.ParseUint(done, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", HeaderDone, done, err)
	}
	p := &progress{upTo: upTo, open: map[uint64]struct{}{}}
	open := h.Get(HeaderOpen)
	if open == "" {
		return p, nil
	}
	for part := range strings.SplitSeq(open, ",") {
		first, last, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(first, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", HeaderOpen, part, err)
		}
		z := a
		if isRange {
			if z, err = strconv.ParseUint(last, 10, 64); err != nil {
				return nil, fmt.Errorf("%s %q: %w", HeaderOpen, part, err)
			}
		}
		if z < a || z > upTo || z-a >= uint64(maxOpenSeqs-len(p.open)) {
			return nil, fmt.Errorf("%s: range %q out of bounds", HeaderOpen, part)
		}
		for seq := a; seq <= z; seq++ {
			p.open[seq] = struct{}{}
		}
	}
	return p, nil
}

// loadProgress reads each model's progress from its last performance
// report, so that feedback reported by an earlier process and delivered
// again (the consumer is recreated at its floor) is not counted twice.
func (s *Service) loadProgress(ctx context.Context) error {
	stream, err := s.env.JS.Stream(ctx, s.env.Subjects.StreamName(natsbus.StreamReports))
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(s.env.Subjects.All(natsbus.KindPerformance)))
	if err != nil {
		return err
	}
	loaded := map[string]*progress{}
	for subject := range info.State.Subjects {
		m, err := stream.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // aged out since
		}
		if err != nil {
			return fmt.Errorf("last report on %s: %w", subject, err)
		}
		p, err := parseProgress(m.Header)
		if err != nil {
			s.env.Log.Warn("feedback: ignoring a report's progress record", zap.String("subject", subject), zap.Error(err))
			continue
		}
		if model := s.env.Subjects.Model(subject); p != nil && s.mine(model) {
			loaded[model] = p
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for model, p := range loaded {
		s.progress[model] = p
	}
	s.env.Log.Info("feedback: progress loaded", zap.Int("models", len(loaded)))
	return nil
}
