package timeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/timeline"
	"github.com/clockd/clockd/timeline/timelinetest"
)

// logOf returns a log of n events of hosts hv1/hv2, stamped by the
// cluster at GSN·1µs.
func logOf(n int) *timelinetest.Log {
	l := &timelinetest.Log{}
	for i := 1; i <= n; i++ {
		ref := int64(1700000000e9) + int64(i)*1000
		l.Append(ingest.Event{Host: fmt.Sprint("hv", 1+i%2), Source: "s", SourceSeq: uint64(i), LocalNs: ref + 5,
			RefEarliest: ref - 10, RefLatest: ref + 10, Kind: ingest.KindLog, Name: fmt.Sprint("e", i)})
	}
	return l
}

func gsns(evs []timeline.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, fmt.Sprint(e.GSN))
	}
	return strings.Join(s, ",")
}

func TestExport(t *testing.T) {
	tests := []struct {
		name     string
		from, to uint64
		batch    int
		want     string
		wantErr  error
	}{
		{"a range", 3, 6, 2, "3,4,5,6", nil},
		{"to the end when To is 0", 8, 0, 2, "8,9,10", nil},
		{"one event", 5, 5, 100, "5", nil},
		{"past the end", 9, 12, 1, "9,10", timeline.ErrLogEnded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out []timeline.Event
			sum, err := timeline.Export(context.Background(), logOf(10), timeline.LogOptions{From: tc.from, To: tc.to, Batch: tc.batch},
				func(e timeline.Event) error { out = append(out, e); return nil })
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if got := gsns(out); got != tc.want {
				t.Errorf("GSNs %s, want %s", got, tc.want)
			}
			if sum.Events != int64(len(out)) || len(out) > 0 && (sum.FirstGSN != out[0].GSN || sum.LastGSN != out[len(out)-1].GSN) {
				t.Errorf("summary %+v", sum)
			}
			for _, e := range out {
				if !e.Corrected || e.TimeNs != e.RefEarliest+10 {
					t.Errorf("GSN %d placed at %d, corrected %v; want the middle of its interval", e.GSN, e.TimeNs, e.Corrected)
				}
			}
		})
	}
}

func TestExportReportsCompactedRange(t *testing.T) {
	l := logOf(10)
	l.Compact(4)
	var out []timeline.Event
	sum, err := timeline.Export(context.Background(), l, timeline.LogOptions{From: 1, To: 5},
		func(e timeline.Event) error { out = append(out, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if gsns(out) != "4,5" || len(sum.Gaps) != 1 || sum.Gaps[0] != (timeline.Gap{From: 1, To: 3}) {
		t.Errorf("out %s gaps %+v", gsns(out), sum.Gaps)
	}
}

func TestExportRejectsBackwardRange(t *testing.T) {
	_, err := timeline.Export(context.Background(), logOf(3), timeline.LogOptions{From: 3, To: 2}, func(timeline.Event) error { return nil })
	if err == nil {
		t.Fatal("no error for --to before --from")
	}
}

// tail runs Tail until it has emitted n events, then stops it.
func tail(t *testing.T, l *timelinetest.Log, opts timeline.LogOptions, n int) ([]timeline.Event, timeline.Summary, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out []timeline.Event
	opts.Wait = func(ctx context.Context, attempt int) error { return ctx.Err() }
	sum, err := timeline.Tail(ctx, l, opts, func(e timeline.Event) error {
		out = append(out, e)
		if len(out) == n {
			cancel()
		}
		return nil
	})
	return out, sum, err
}

func TestTailResumesAfterFailures(t *testing.T) {
	l := logOf(10)
	l.FailAfter = 3 // every stream breaks after 3 events
	l.Replay = 2    // and the server resends 2 on resume
	out, sum, err := tail(t, l, timeline.LogOptions{From: 2}, 9)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
	if got := gsns(out); got != "2,3,4,5,6,7,8,9,10" {
		t.Errorf("GSNs %s: each once, in order", got)
	}
	if l.Subscriptions < 4 {
		t.Errorf("%d subscriptions for 9 events at 3 per stream", l.Subscriptions)
	}
	if sum.Replayed == 0 || len(sum.Gaps) != 0 {
		t.Errorf("summary replayed %d gaps %v", sum.Replayed, sum.Gaps)
	}
}

func TestTailFollowsAppends(t *testing.T) {
	l := logOf(2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out []timeline.Event
	idles := 0
	_, err := timeline.Tail(ctx, l, timeline.LogOptions{From: 1, Idle: func() error {
		idles++
		if idles == 1 { // caught up: the log grows while we tail
			l.Append(ingest.Event{Host: "hv9", Source: "s", SourceSeq: 1, LocalNs: 1, Kind: ingest.KindLog})
		}
		return nil
	}}, func(e timeline.Event) error {
		out = append(out, e)
		if len(out) == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || gsns(out) != "1,2,3" {
		t.Errorf("err %v, GSNs %s", err, gsns(out))
	}
	if out[2].Corrected || out[2].TimeNs != 1 {
		t.Errorf("an unstamped event: corrected %v at %d, want its LocalNs", out[2].Corrected, out[2].TimeNs)
	}
}

func TestTailGivesUp(t *testing.T) {
	for _, tc := range []struct {
		from    uint64
		retries int
		want    string
	}{
		{0, 3, "event log stream from the start: unavailable (gave up after 3 retries in a row)"},
		{5, 1, "event log stream from GSN 5: unavailable (gave up after 1 retry in a row)"},
	} {
		src := timelinetest.FailingSource{Err: errors.New("unavailable")}
		attempts := 0
		_, err := timeline.Tail(context.Background(), src, timeline.LogOptions{From: tc.from, Retries: tc.retries,
			Wait: func(context.Context, int) error { attempts++; return nil }}, func(timeline.Event) error { return nil })
		if err == nil || err.Error() != tc.want || attempts != tc.retries {
			t.Errorf("from %d: err %v after %d waits, want %q after %d", tc.from, err, attempts, tc.want, tc.retries)
		}
	}
}

func TestTailSaysOnceThatItRetries(t *testing.T) {
	// Four failures in a row: one notice, before the first retry.
	var said []string
	waits := 0
	_, err := timeline.Tail(context.Background(), timelinetest.FailingSource{Err: errors.New("unavailable")}, timeline.LogOptions{
		From: 5, Retries: 3,
		Wait: func(context.Context, int) error {
			waits++
			if len(said) != 1 {
				t.Errorf("wait %d after %d notices, want 1", waits, len(said))
			}
			return nil
		},
		Retrying: func(err error) { said = append(said, err.Error()) }}, func(timeline.Event) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 retries") {
		t.Errorf("error %v", err)
	}
	if want := "event log stream from GSN 5: unavailable"; strings.Join(said, "\n") != want {
		t.Errorf("Retrying called with %q, want once with %q", said, want)
	}

	// Streams that fail after delivering events: each such failure
	// starts a new run of retries, and is told; those in a row are not.
	src := &scriptedSource{streams: [][]uint64{{1, 2}, nil, nil, {3}, nil, nil, nil}}
	said = nil
	_, err = timeline.Tail(context.Background(), src, timeline.LogOptions{From: 1, Retries: 3,
		Wait:     func(context.Context, int) error { return nil },
		Retrying: func(err error) { said = append(said, err.Error()) }}, func(timeline.Event) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "event log stream from GSN 4: broken (gave up after 3 retries") {
		t.Errorf("error %v", err)
	}
	want := "event log stream from GSN 3: broken\nevent log stream from GSN 4: broken"
	if got := strings.Join(said, "\n"); got != want {
		t.Errorf("Retrying called with\n%s\nwant\n%s", got, want)
	}
}

// scriptedSource serves one stream per Subscribe: the events of the GSNs
// of streams[i] for the i-th, then an error once they are all received.
type scriptedSource struct {
	streams [][]uint64
	next    int
}

func (s *scriptedSource) Read(context.Context, uint64, int) ([]timeline.LogEvent, uint64, error) {
	return nil, 0, errors.New("not used")
}

func (s *scriptedSource) Subscribe(ctx context.Context, _ uint64) (<-chan timeline.LogEvent, <-chan error) {
	var gsns []uint64
	if s.next < len(s.streams) {
		gsns = s.streams[s.next]
	}
	s.next++
	events, errs := make(chan timeline.LogEvent), make(chan error, 1)
	go func() {
		for _, gsn := range gsns {
			le := timeline.LogEvent{GSN: gsn, Event: ingest.Event{Host: "hv1", Source: "s", SourceSeq: gsn,
				LocalNs: int64(gsn), Kind: ingest.KindLog}}
			select {
			case events <- le: // unbuffered: received before the error is sent
			case <-ctx.Done():
				return
			}
		}
		errs <- errors.New("broken")
	}()
	return events, errs
}

func TestTailStopsOnEmitError(t *testing.T) {
	boom := errors.New("disk full")
	_, err := timeline.Tail(context.Background(), logOf(5), timeline.LogOptions{From: 1}, func(timeline.Event) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want the emit error", err)
	}
}

func TestLogReadersCheckConsistency(t *testing.T) {
	l := &timelinetest.Log{}
	l.Append(ingest.Event{Host: "hv1", Source: "s", SourceSeq: 1, LocalNs: 1, Kind: ingest.KindEnd, Name: "orphan"},
		ingest.Event{Host: "hv1", Source: "s", SourceSeq: 2, LocalNs: 2, Kind: ingest.KindBegin, Name: "open"})
	var out []timeline.Event
	sum, err := timeline.Export(context.Background(), l, timeline.LogOptions{From: 1}, func(e timeline.Event) error { out = append(out, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Issue != timeline.IssueEndWithoutBegin || sum.IssueCounts[timeline.IssueBeginWithoutEnd] != 1 || sum.Inconsistencies[0].GSN != 1 {
		t.Errorf("issues: %+v %+v", out[0], sum)
	}
}
