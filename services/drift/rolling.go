package drift

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/lookout-ml/lookout/pkg/driftreport"
)

// The rolling reference's history is kept in the references bucket too, a
// closed window as one object per part (its features, and the outputs of
// each model version), so that a restarted service compares with the same
// previous windows rather than starting over.

func rollingPrefix(model string) string { return "rolling/" + model + "/" }

func rollingName(model string, seq uint64, part string) string {
	return fmt.Sprintf("%s%020d/%s", rollingPrefix(model), seq, part)
}

const rollingFeatures = "features"

// storeRolling keeps a closed window of the rolling history.
func (s *Service) storeRolling(model string, w *window) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	span := strconv.FormatInt(w.minTS, 10) + " " + strconv.FormatInt(w.maxTS, 10)
	_, err := s.refs.put(ctx, rollingName(model, w.firstSeq, rollingFeatures), model, span, w.features)
	for version, out := range w.outputs {
		if err != nil {
			break
		}
		_, err = s.refs.put(ctx, rollingName(model, w.firstSeq, "v:"+version), model, span, out)
	}
	if err != nil {
		s.env.Log.Warn("drift: storing a rolling window; a restart starts its history over",
			zap.String("model", model), zap.Error(err))
	}
}

// dropRolling forgets a window that left the rolling history.
func (s *Service) dropRolling(model string, seq uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	names, err := s.refs.names(ctx, rollingName(model, seq, ""))
	for _, name := range names {
		if err == nil {
			err = s.refs.obs.Delete(ctx, name)
		}
	}
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		s.env.Log.Warn("drift: removing an old rolling window", zap.String("model", model), zap.Error(err))
	}
}

// loadRolling restores a model's rolling history: its last RollingWindows
// stored windows, oldest first.
func (s *Service) loadRolling(m *modelState) {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	names, err := s.refs.names(ctx, rollingPrefix(m.name))
	if err != nil {
		s.env.Log.Warn("drift: reading the rolling history", zap.String("model", m.name), zap.Error(err))
		return
	}
	bySeq := map[uint64]*window{}
	for _, name := range names {
		seqText, part, ok := strings.Cut(strings.TrimPrefix(name, rollingPrefix(m.name)), "/")
		seq, err := strconv.ParseUint(seqText, 10, 64)
		if !ok || err != nil {
			continue
		}
		d, info, err := s.refs.get(ctx, name, s.sample)
		if err != nil {
			s.env.Log.Warn("drift: reading a rolling window", zap.String("name", name), zap.Error(err))
			continue
		}
		w := bySeq[seq]
		if w == nil {
			w = &window{firstSeq: seq, outputs: map[string]*driftreport.Dataset{}}
			minTS, maxTS, _ := strings.Cut(info.Source, " ")
			w.minTS, _ = strconv.ParseInt(minTS, 10, 64)
			w.maxTS, _ = strconv.ParseInt(maxTS, 10, 64)
			bySeq[seq] = w
		}
		if part == rollingFeatures {
			w.features, w.rows = d, d.Rows
		} else {
			w.outputs[strings.TrimPrefix(part, "v:")] = d
		}
	}
	for _, seq := range slices.Sorted(maps.Keys(bySeq)) {
		if w := bySeq[seq]; w.features != nil && seq <= m.ck.ClosedFirst {
			m.history = append(m.history, w)
		}
	}
	if extra := len(m.history) - s.cfg.RollingWindows; extra > 0 {
		m.history = m.history[extra:]
	}
	if len(m.history) > 0 {
		s.env.Log.Info("drift: rolling history restored", zap.String("model", m.name), zap.Int("windows", len(m.history)))
	}
}
