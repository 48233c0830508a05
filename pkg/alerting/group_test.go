package alerting

import (
	"strings"
	"testing"
	"time"
)

// run feeds the alert events of drift windows 0..n-1 (drifted in the
// windows incident says) through one group, as the dispatcher does, with
// each window's events arriving at wall time arrive(i), and the wall-time
// timer firing in between. It returns the notifications, one line each.
func run(t *testing.T, n int, incident func(int) bool, timing Timing, arrive func(int) time.Time) []string {
	t.Helper()
	e, err := NewEvaluator(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	sinks := []SinkFilter{{Name: "hook"}}
	g := NewGroup("churn")
	var out []string
	note := func(ns []Notification) {
		for _, n := range ns {
			out = append(out, n.Status+" "+names([]Notification{n}))
		}
	}
	// timers runs the wall-time fallback up to wall time until.
	timers := func(until time.Time) {
		for due := g.WallDue(timing); !due.IsZero() && !due.After(until); due = g.WallDue(timing) {
			note(g.Advance(g.Now(due, timing), due, timing, sinks, nil))
		}
	}
	for i := range n {
		wall := arrive(i)
		timers(wall)
		var r Report
		if incident(i) {
			r = drift(i, true, "age")
		} else {
			r = drift(i, false)
		}
		for _, a := range e.Evaluate(SourceDrift, "churn", "lookout.drift.churn", r, wall).Events {
			at := g.Observe(&a, wall, timing)
			note(g.Advance(at, wall, timing, sinks, nil))
			g.Add(a, at, timing)
		}
	}
	timers(arrive(n - 1).Add(24 * time.Hour))
	return out
}

func TestBacklogIsNotifiedAsPaced(t *testing.T) {
	timing := Timing{GroupWait: 30 * time.Second, GroupInterval: 5 * time.Minute, RepeatInterval: 20 * time.Minute}
	// Two incidents in 2 h of 5-minute windows: 3 windows, then 8 (long
	// enough for a repeat).
	incident := func(i int) bool { return (i >= 5 && i < 8) || (i >= 12 && i < 20) }
	end := func(i int) time.Time { return t0.Add(time.Duration(i+1) * 5 * time.Minute) }
	paced := run(t, 24, incident, timing, func(i int) time.Time { return end(i).Add(70 * time.Second) })
	backlog := run(t, 24, incident, timing, func(i int) time.Time { return t0.Add(48 * time.Hour).Add(time.Duration(i) * time.Millisecond) })
	want := []string{
		"firing hook=confidence_drop:firing,dataset_drift:firing[+1]",
		"resolved hook=confidence_drop:resolved,dataset_drift:resolved",
		"firing hook=confidence_drop:firing,dataset_drift:firing[+1]",
		"firing hook=confidence_drop:firing,dataset_drift:firing[+1]", // repeat_interval
		"firing hook=confidence_drop:firing,dataset_drift:firing[+1]",
		"resolved hook=confidence_drop:resolved,dataset_drift:resolved",
	}
	if strings.Join(paced, "\n") != strings.Join(want, "\n") {
		t.Fatalf("paced:\n%s\nwant:\n%s", strings.Join(paced, "\n"), strings.Join(want, "\n"))
	}
	if strings.Join(backlog, "\n") != strings.Join(paced, "\n") {
		t.Fatalf("backlog:\n%s\npaced:\n%s", strings.Join(backlog, "\n"), strings.Join(paced, "\n"))
	}
}

func TestFiredAndResolvedWithinGroupWaitIsNotified(t *testing.T) {
	// group_wait longer than the incident: both events land before the
	// first flush.
	timing := Timing{GroupWait: 20 * time.Minute, GroupInterval: 5 * time.Minute, RepeatInterval: time.Hour}
	incident := func(i int) bool { return i == 2 }
	end := func(i int) time.Time { return t0.Add(time.Duration(i+1) * 5 * time.Minute) }
	got := run(t, 6, incident, timing, func(i int) time.Time { return end(i).Add(time.Second) })
	want := "resolved hook=confidence_drop:resolved,dataset_drift:resolved,feature_drift:resolved"
	if strings.Join(got, "\n") != want {
		t.Fatalf("got:\n%s\nwant %s", strings.Join(got, "\n"), want)
	}

	g := NewGroup("churn")
	fired := alert(RuleDatasetDrift, StatusFiring, nil)
	fired.StartsAt = t0
	resolved := fired
	resolved.Status = StatusResolved
	ends := t0.Add(10 * time.Minute)
	resolved.EndsAt = &ends
	g.Add(fired, t0, timing)
	g.Add(resolved, ends, timing)
	ns := g.Flush(t0.Add(timing.GroupWait), timing, []SinkFilter{{Name: "hook"}}, nil)
	if len(ns) != 1 || ns[0].Status != StatusResolved || len(ns[0].Alerts) != 1 ||
		!ns[0].Alerts[0].StartsAt.Equal(t0) || ns[0].Alerts[0].EndsAt == nil || !ns[0].Alerts[0].EndsAt.Equal(ends) {
		t.Fatalf("notifications: %+v", ns)
	}
	if !g.Empty() {
		t.Fatalf("group kept %+v", g)
	}
}

// windowed returns alert a as sent from a report window ending at end.
func windowed(a Alert, end time.Time) Alert {
	a.StartsAt = end
	a.Source = Source{Subject: "lookout.drift.churn", Window: &Window{Start: end.Add(-5 * time.Minute), End: end}}
	return a
}

// A firing group whose clock jumps far ahead in event time (reports of
// 1970, or of two years ago, then live ones) sends one repeat for the
// jump, not one per repeat_interval of it: nothing happened in the gap.
func TestEventTimeJumpRepeatsOnce(t *testing.T) {
	timing := Timing{GroupWait: 30 * time.Second, GroupInterval: 5 * time.Minute, RepeatInterval: time.Hour}
	sinks := []SinkFilter{{Name: "hook"}}
	for _, past := range []time.Time{time.Unix(300, 0).UTC(), t0.AddDate(-2, 0, 0)} {
		g := NewGroup("churn")
		wall := t0
		fired := windowed(alert(RuleDatasetDrift, StatusFiring, nil), past)
		at := g.Observe(&fired, wall, timing)
		g.Add(fired, at, timing)
		ns := g.Advance(at.Add(timing.GroupWait), wall, timing, sinks, nil)
		if len(ns) != 1 {
			t.Fatalf("past %v: first flush sent %d", past, len(ns))
		}
		// A live event of another alert: the group's clock jumps to now.
		live := windowed(alert(RuleConfidenceDrop, StatusFiring, nil), t0)
		wall = wall.Add(time.Second)
		at = g.Observe(&live, wall, timing)
		ns = g.Advance(at, wall, timing, sinks, nil)
		if len(ns) > 1 {
			t.Fatalf("past %v: the jump sent %d notifications, want at most 1", past, len(ns))
		}
		g.Add(live, at, timing)
		total := len(ns)
		for range 100 {
			wall = wall.Add(timing.GroupInterval)
			total += len(g.Advance(g.Now(wall, timing), wall, timing, sinks, nil))
		}
		// The new alert, then repeats each hour of the 100 intervals.
		if total > 1+1+100*5/60+1 {
			t.Fatalf("past %v: %d notifications after the jump", past, total)
		}
	}
}
