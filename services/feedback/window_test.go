package feedback_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-ml/lookout/pkg/event"
	"github.com/lookout-ml/lookout/pkg/natsbus/natstest"
	"github.com/lookout-ml/lookout/services/feedback"
)

// Performance windows are event-time windows (pkg/window) on the feedback's
// ts: these tests pin how they close.

// wantSpan fails unless a report names the aligned event-time window
// [from, from+d).
func wantSpan(t *testing.T, name string, start, end, from time.Time, d time.Duration) {
	t.Helper()
	if !start.Equal(from) || !end.Equal(from.Add(d)) {
		t.Errorf("%s: window %v - %v, want %v - %v", name, start, end, from, from.Add(d))
	}
}

// A steady stream of feedback with max_ack_pending far below
// window_labels used to stall for ever: the held feedback filled the
// consumer's pending acks, the window waited for more, and the time close
// waited for "nothing pending". Now the open windows are reported as they
// are once the consumer is full, and every feedback message ends in a
// report and is acknowledged.
func TestFeedbackSmallMaxAckPendingReports(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	const n = 40
	for i := range n {
		predict(t, js, "m", fmt.Sprintf("p%d", i), "v1", event.Text("yes"))
	}
	env := natstest.Env(t, nc, js)
	reg := prometheus.NewRegistry()
	env.Metrics = reg
	startEnv(t, env, feedback.Config{WindowLabels: 1000, Window: time.Hour, Wait: 5 * time.Second, MaxAckPending: 5})
	for i := range n {
		send(t, js, "m", at(fmt.Sprintf(`{"id":"p%d","label":"yes"}`, i), time.Duration(i)*time.Second))
	}
	natstest.WaitFor(t, 30*time.Second, func() error {
		total := 0
		for _, r := range reports(t, js, "m") {
			total += r.Window.Feedback
			if r.Unmatched != 0 {
				return fmt.Errorf("unmatched feedback in %+v", r)
			}
		}
		if total != n {
			return fmt.Errorf("%d feedback reported, want %d", total, n)
		}
		return nil
	})
	// Each window closed under pressure names the part of the span it
	// covers: contiguous from the span's start, to its latest feedback.
	from := span
	for i, r := range reports(t, js, "m") {
		if !r.Window.Start.Equal(from) || r.Window.End.Before(r.Window.Start) || r.Window.End.After(span.Add(time.Hour)) {
			t.Errorf("report %d: window %v - %v, want from %v within the span", i, r.Window.Start, r.Window.End, from)
		}
		from = r.Window.End
		near(t, "accuracy", r.Accuracy, 1)
	}
	waitAckPending(t, js, 0, n)
	if v := metricValue(t, reg, "lookout_feedback_windows_total", "closed_by", "pressure"); v == 0 {
		t.Errorf("no window closed by pressure")
	}
}

// Feedback out of order within the allowed lateness lands in its own
// window, which the watermark closes; feedback later than that is not
// dropped but reported in a window of its span.
func TestFeedbackOutOfOrderWithinLateness(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		predict(t, js, "m", id, "v1", event.Text("yes"))
	}
	env := natstest.Env(t, nc, js)
	reg := prometheus.NewRegistry()
	env.Metrics = reg
	startEnv(t, env, feedback.Config{WindowLabels: 1000, Window: time.Hour, AllowedLateness: 15 * time.Minute, Wait: 5 * time.Second})
	send(t, js, "m", at(`{"id":"a","label":"yes"}`, 50*time.Minute)) // first window
	send(t, js, "m", at(`{"id":"b","label":"no"}`, 70*time.Minute))  // second window; watermark 55m
	send(t, js, "m", at(`{"id":"c","label":"no"}`, 55*time.Minute))  // out of order, within the lateness: first window
	send(t, js, "m", at(`{"id":"d","label":"yes"}`, 80*time.Minute)) // watermark 65m: the first window closes

	r := waitReports(t, js, "m", 1)[0]
	if r.Window.Feedback != 2 || r.Labelled != 2 {
		t.Fatalf("first window: %+v", r)
	}
	near(t, "accuracy of a and c", r.Accuracy, 0.5)
	wantSpan(t, "first window", r.Window.Start, r.Window.End, span, time.Hour)
	if v := metricValue(t, reg, "lookout_feedback_windows_total", "closed_by", "watermark"); v != 1 {
		t.Errorf("windows closed by the watermark: %v, want 1", v)
	}

	send(t, js, "m", at(`{"id":"e","label":"yes"}`, 30*time.Minute)) // past the lateness
	got := waitReports(t, js, "m", 2)
	if r := got[1]; r.Window.Feedback != 1 || r.Labelled != 1 {
		t.Fatalf("late feedback's report: %+v", r)
	}
	wantSpan(t, "late feedback's window", got[1].Window.Start, got[1].Window.End, span, time.Hour)
	if v := metricValue(t, reg, "lookout_feedback_late_total"); v != 1 {
		t.Errorf("late feedback counted %v, want 1", v)
	}
	// b and d wait in the open second window; everything else is
	// acknowledged.
	waitAckPending(t, js, 2, 5)
}

// A model that falls quiet has its open window closed by the idle timeout
// (wall time on its watermark), and the report names the aligned
// event-time window, not the times its feedback was stored.
func TestFeedbackQuietModelClosedByIdleTimeout(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	predict(t, js, "quiet", "q1", "v1", event.Text("yes"))
	predict(t, js, "quiet", "q2", "v1", event.Text("no"))
	env := natstest.Env(t, nc, js)
	reg := prometheus.NewRegistry()
	env.Metrics = reg
	startEnv(t, env, feedback.Config{WindowLabels: 1000, Window: time.Hour, IdleTimeout: time.Second, Wait: 5 * time.Second})
	send(t, js, "quiet", at(`{"id":"q1","label":"yes"}`, 10*time.Minute))
	send(t, js, "quiet", at(`{"id":"q2","label":"yes"}`, 20*time.Minute))

	r := waitReports(t, js, "quiet", 1)[0]
	if r.Window.Feedback != 2 || r.Labelled != 2 {
		t.Fatalf("report: %+v", r)
	}
	near(t, "accuracy", r.Accuracy, 0.5)
	wantSpan(t, "report", r.Window.Start, r.Window.End, span, time.Hour)
	if v := metricValue(t, reg, "lookout_feedback_windows_total", "closed_by", "idle"); v != 1 {
		t.Errorf("windows closed idle: %v, want 1", v)
	}
	waitAckPending(t, js, 0, 2)
}

// Windows closed full (window_labels) name the event time each covers,
// contiguous from the span's start: from the window before's end to their
// latest feedback. The last one, closed idle, ends with the span. They
// once all named the whole span, identical, so that an alert on the first
// started after all its feedback.
func TestFeedbackFullWindowsNameTheirPart(t *testing.T) {
	_, nc, js := natstest.RunWithStreams(t)
	const n = 7
	for i := range n {
		predict(t, js, "m", fmt.Sprintf("p%d", i), "v1", event.Text("yes"))
	}
	startEnv(t, natstest.Env(t, nc, js), feedback.Config{WindowLabels: 3, Window: time.Hour, IdleTimeout: time.Second, Wait: 5 * time.Second})
	for i := range n {
		send(t, js, "m", at(fmt.Sprintf(`{"id":"p%d","label":"yes"}`, i), time.Duration(i+1)*time.Minute))
	}
	var got []string
	for _, r := range waitReports(t, js, "m", 3) {
		got = append(got, fmt.Sprintf("%v-%v: %d", r.Window.Start.Sub(span), r.Window.End.Sub(span), r.Window.Feedback))
	}
	if want := []string{"0s-3m0s: 3", "3m0s-6m0s: 3", "6m0s-1h0m0s: 1"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("windows %v, want %v", got, want)
	}
}
