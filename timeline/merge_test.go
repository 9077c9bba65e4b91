package timeline

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clockd/clockd/ingest"
)

// names lists "host/source/seq" of evs, the shape most tests compare.
func names(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, fmt.Sprintf("%s/%s/%d", e.Host, e.Source, e.SourceSeq))
	}
	return strings.Join(s, " ")
}

func TestMergeOrdersByCorrectedTime(t *testing.T) {
	// hv2's clock is 10 ns ahead: its local 15 is reference 5.
	offs, err := NewOffsets([]Sample{{Host: "hv1", OffsetNs: 0}, {Host: "hv2", OffsetNs: 10}, {Host: "hv3", OffsetNs: -3}})
	if err != nil {
		t.Fatal(err)
	}
	inputs := []Input{
		input("a", ev("hv1", "s", 1, "log", ""), ev("hv1", "s", 8, "log", "")),
		input("b", ev("hv2", "s", 15, "log", ""), ev("hv2", "s", 16, "log", "")),
		input("c", ev("hv3", "s", 4, "log", ""), ev("hv3", "s", 20, "log", "")),
	}
	out, sum := mergeAll(t, inputs, MergeOptions{Offsets: offs})
	// reference times: hv1 1 8, hv2 5 6, hv3 7 23
	want := "hv1/s/1 hv2/s/1 hv2/s/2 hv3/s/1 hv1/s/2 hv3/s/2"
	if got := names(out); got != want {
		t.Errorf("order %s\nwant  %s", got, want)
	}
	for _, e := range out {
		if !e.Corrected {
			t.Errorf("%s/%d not corrected", e.Host, e.SourceSeq)
		}
	}
	if out[1].LocalNs != 15 || out[1].TimeNs != 5 {
		t.Errorf("hv2's first event: local %d time %d, want 15 and 5", out[1].LocalNs, out[1].TimeNs)
	}
	if !sum.Clean() {
		t.Errorf("summary not clean: %+v", sum)
	}
}

func TestMergeTieBreak(t *testing.T) {
	mk := func() []Input {
		return []Input{
			input("a", ev("hv2", "x", 10, "log", ""), ev("hv2", "x", 10, "log", "")),
			input("b", ev("hv1", "y", 10, "log", ""), ev("hv1", "x", 10, "log", "")),
			input("c", ev("hv1", "x", 10, "log", "")),
			input("d", ev("hv1", "x", 10, "log", "")),
		}
	}
	// (host, source, seq, input): hv1/x/1 of c and d tie on all but the
	// input; b's hv1/x/1 comes after its own hv1/y/1 (input order).
	want := "hv1/x/1@2 hv1/x/1@3 hv1/y/1@1 hv1/x/1@1 hv2/x/1@0 hv2/x/2@0"
	for batch := 1; batch <= 3; batch++ {
		out, _ := mergeAll(t, mk(), MergeOptions{BatchEvents: batch})
		var got []string
		for _, e := range out {
			got = append(got, fmt.Sprintf("%s/%s/%d@%d", e.Host, e.Source, e.SourceSeq, e.Input))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("batch %d: %s\nwant     %s", batch, strings.Join(got, " "), want)
		}
	}
}

func TestMergeLateEventsAreEmittedAndReported(t *testing.T) {
	inputs := []Input{
		input("a.jsonl", ev("hv1", "s", 10, "log", ""), ev("hv1", "s", 30, "log", ""), ev("hv1", "s", 20, "log", ""), ev("hv1", "s", 25, "log", ""), ev("hv1", "s", 40, "log", "")),
		input("b.jsonl", ev("hv2", "s", 15, "log", ""), ev("hv2", "s", 24, "log", ""), ev("hv2", "s", 35, "log", "")),
	}
	out, sum := mergeAll(t, inputs, MergeOptions{})
	want := "hv1/s/1 hv2/s/1 hv2/s/2 hv1/s/2 hv1/s/3 hv1/s/4 hv2/s/3 hv1/s/5"
	if got := names(out); got != want {
		t.Errorf("order %s\nwant  %s", got, want)
	}
	if out[4].LateNs != 10 || out[5].LateNs != 5 {
		t.Errorf("LateNs of hv1 seq 3 and 4: %d %d, want 10 and 5 (behind seq 2 at 30)", out[4].LateNs, out[5].LateNs)
	}
	if sum.Late != 2 || len(sum.LateEvents) != 2 || sum.Inputs[0].Late != 2 {
		t.Fatalf("summary late %d %+v", sum.Late, sum.LateEvents)
	}
	wantLate := LateEvent{Input: "a.jsonl", Host: "hv1", Source: "s", Seq: 3, TimeNs: 20, LateNs: 10}
	if sum.LateEvents[0] != wantLate {
		t.Errorf("late event %+v, want %+v", sum.LateEvents[0], wantLate)
	}
	if sum.Inputs[0].Events != 5 || sum.Inputs[1].Events != 3 {
		t.Errorf("input counts %d %d", sum.Inputs[0].Events, sum.Inputs[1].Events)
	}
}

func TestMergeUntimedEventsKeepTheirPlace(t *testing.T) {
	inputs := []Input{
		input("a", untimed("hv1", "s", "log", "u1"), untimed("hv1", "s", "log", "u2"), ev("hv1", "s", 10, "log", "t10"),
			untimed("hv1", "s", "log", "u3"), ev("hv1", "s", 20, "log", "t20")),
		input("b", ev("hv2", "s", 5, "log", "t5"), ev("hv2", "s", 15, "log", "t15")),
		input("c", untimed("hv3", "s", "log", "never")),
	}
	out, sum := mergeAll(t, inputs, MergeOptions{BatchEvents: 2})
	var got []string
	for _, e := range out {
		got = append(got, fmt.Sprintf("%s@%d", e.Name, e.TimeNs))
	}
	want := "never@0 t5@5 u1@10 u2@10 t10@10 u3@10 t15@15 t20@20"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	if sum.IssueCounts[IssueNoTimestamp] != 4 {
		t.Errorf("no-timestamp count %d, want 4", sum.IssueCounts[IssueNoTimestamp])
	}
	for _, e := range out {
		if e.Untimed != (e.Issue == IssueNoTimestamp) {
			t.Errorf("%s: issue %q", e.Name, e.Issue)
		}
	}
}

// TestMergeTimeZero checks that only Untimed means "no time": a LocalNs
// of 0 (a Chrome trace's first ts, the Unix epoch) is a time, and an
// event the cluster stamped is timed by its stamps whatever its LocalNs.
func TestMergeTimeZero(t *testing.T) {
	stamped := func(untimed bool) ingest.Event {
		e := ev("hv1", "s", 0, "log", "stamped")
		e.Untimed, e.RefEarliest, e.RefLatest = untimed, 100, 200
		return e
	}
	for _, tc := range []struct {
		name      string
		ev        ingest.Event
		wantNs    int64
		corrected bool
		issue     Issue
	}{
		{"local time 0", ev("hv1", "s", 0, "log", "epoch"), 0, false, ""},
		{"untimed", untimed("hv1", "s", "log", "none"), 7, false, IssueNoTimestamp},
		{"stamped, local time 0", stamped(false), 150, true, ""},
		{"stamped and untimed", stamped(true), 150, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The event follows one at 7, whose time an untimed one takes.
			in := input("a", ev("hv1", "s", 7, "log", "first"), tc.ev)
			out, sum := mergeAll(t, []Input{in}, MergeOptions{Strict: tc.issue == ""})
			got := out[0]
			if got.Name == "first" {
				got = out[1]
			}
			if got.TimeNs != tc.wantNs || got.Corrected != tc.corrected || got.Issue != tc.issue {
				t.Errorf("time %d corrected %v issue %q, want %d %v %q", got.TimeNs, got.Corrected, got.Issue,
					tc.wantNs, tc.corrected, tc.issue)
			}
			if n := sum.IssueCounts[IssueNoTimestamp]; (n == 1) != (tc.issue == IssueNoTimestamp) {
				t.Errorf("no-timestamp count %d", n)
			}
		})
	}
}

// TestMergeCorrectionOverflow checks that a correction that would wrap
// int64 leaves the event at its local time, reported, and that strict
// mode fails on it.
func TestMergeCorrectionOverflow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		offsetNs int64
		localNs  int64
		wantNs   int64
		issue    Issue
	}{
		{"behind, near the end of time", -MaxOffsetNs, math.MaxInt64 - 5, math.MaxInt64 - 5, IssueCorrectionOverflow},
		{"ahead, near the start of time", MaxOffsetNs, math.MinInt64 + 5, math.MinInt64 + 5, IssueCorrectionOverflow},
		{"behind, just in range", -MaxOffsetNs, math.MaxInt64 - MaxOffsetNs, math.MaxInt64, ""},
		{"ahead, just in range", MaxOffsetNs, math.MinInt64 + MaxOffsetNs, math.MinInt64, ""},
		{"an ordinary time", -MaxOffsetNs, 1e18, 1e18 + MaxOffsetNs, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			offs, err := NewOffsets([]Sample{{Host: "hv1", OffsetNs: tc.offsetNs}})
			if err != nil {
				t.Fatal(err)
			}
			mk := func() []Input { return []Input{input("a", ev("hv1", "s", tc.localNs, "log", "e"))} }
			out, sum := mergeAll(t, mk(), MergeOptions{Offsets: offs})
			e := out[0]
			if e.TimeNs != tc.wantNs || e.Issue != tc.issue || e.Corrected != (tc.issue == "") {
				t.Errorf("time %d issue %q corrected %v, want %d %q %v", e.TimeNs, e.Issue, e.Corrected,
					tc.wantNs, tc.issue, tc.issue == "")
			}
			if tc.issue != "" && sum.IssueCounts[tc.issue] != 1 {
				t.Errorf("issue counts %v", sum.IssueCounts)
			}
			// Every time here is far from the sample; one that was not
			// corrected is not reported as corrected with it.
			wantOutside := int64(1)
			if tc.issue != "" {
				wantOutside = 0
			}
			if sum.Outside != wantOutside {
				t.Errorf("%d events outside the offset history, want %d", sum.Outside, wantOutside)
			}
			_, err = Merge(mk(), MergeOptions{Offsets: offs, Strict: true}, func(Event) error { return nil })
			if (err != nil) != (tc.issue != "") {
				t.Errorf("strict: %v", err)
			}
		})
	}
}

func TestMergeReportsEventsOutsideOffsetHistory(t *testing.T) {
	// hv1 is sampled at ref 1000 s and 1030 s (a reach of a minute), hv2
	// at 1000 s; hv3 has a constant offset.
	offs, err := NewOffsets([]Sample{
		{Host: "hv1", RefNs: 1000e9, OffsetNs: 1e6}, {Host: "hv1", RefNs: 1030e9, OffsetNs: 2e6},
		{Host: "hv2", RefNs: 1000e9},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := offs.SetConstant("hv3", 5); err != nil {
		t.Fatal(err)
	}
	mk := func() []Input {
		return []Input{
			input("a", ev("hv1", "s", 100e9, "log", "early"), ev("hv1", "s", 1010e9, "log", "in"),
				ev("hv1", "s", 1090e9+2e6, "log", "at the reach"), ev("hv1", "s", 3600e9, "log", "late")),
			input("b", ev("hv1", "t", 5000e9, "log", "late too"), ev("hv2", "t", 1050e9, "log", "in"),
				ev("hv3", "t", 1e18, "log", "constant")),
		}
	}
	out, sum := mergeAll(t, mk(), MergeOptions{Offsets: offs})
	want := []OutsideHistory{{Host: "hv1", Events: 3, FirstRefNs: 1000e9, LastRefNs: 1030e9}}
	if sum.Outside != 3 || !reflect.DeepEqual(sum.OutsideHosts, want) {
		t.Errorf("outside %d %+v, want 3 %+v", sum.Outside, sum.OutsideHosts, want)
	}
	for _, e := range out {
		if e.Name == "late" && (!e.Corrected || e.TimeNs != 3600e9-2e6) {
			t.Errorf("late: corrected %v to %d, want with the last sample's offset", e.Corrected, e.TimeNs)
		}
	}
	if sum.Inconsistent != 0 || sum.Clean() {
		t.Errorf("inconsistent %d, clean %v: want a warning only", sum.Inconsistent, sum.Clean())
	}
	var b strings.Builder
	if err := sum.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	line := "  warning: 3 events of host hv1 lie outside its offset history (from 1970-01-01T00:16:40.000000000Z " +
		"to 1970-01-01T00:17:10.000000000Z); corrected with the nearest sample\n"
	if !strings.Contains(b.String(), line) {
		t.Errorf("summary:\n%s\nwant the line\n%s", b.String(), line)
	}
	if _, err := Merge(mk(), MergeOptions{Offsets: offs, Strict: true}, func(Event) error { return nil }); err != nil {
		t.Errorf("strict: %v, want no error", err)
	}
	// With one host listed at most, the others are counted.
	_, sum = mergeAll(t, append(mk(), input("c", ev("hv2", "u", 1, "log", "early"))), MergeOptions{Offsets: offs, MaxRecorded: 1})
	b.Reset()
	sum.WriteText(&b)
	if len(sum.OutsideHosts) != 1 || !strings.Contains(b.String(), "  warning: ... and 1 more events of other hosts outside their offset history\n") {
		t.Errorf("hosts %+v, summary:\n%s", sum.OutsideHosts, b.String())
	}
	// A history of one sample is not a span.
	_, sum = mergeAll(t, []Input{input("c", ev("hv2", "u", 1, "log", "early"))}, MergeOptions{Offsets: offs})
	b.Reset()
	sum.WriteText(&b)
	if line := "  warning: 1 event of host hv2 lies outside its offset history (one sample, at 1970-01-01T00:16:40.000000000Z); " +
		"corrected with the nearest sample\n"; !strings.Contains(b.String(), line) {
		t.Errorf("hosts %+v, summary:\n%s", sum.OutsideHosts, b.String())
	}
}

func TestMergeIssues(t *testing.T) {
	offs, err := NewOffsets([]Sample{{Host: "hv1", OffsetNs: 1}})
	if err != nil {
		t.Fatal(err)
	}
	in := input("a",
		ev("hv1", "s", 10, ingest.KindEnd, "orphan"),
		ev("hv1", "s", 11, ingest.KindBegin, "open"),
		ev("hv1", "s", 12, ingest.KindBegin, "inner"),
		ev("hv1", "s", 13, ingest.KindEnd, "inner"),
		ev("hv1", "s", 14, ingest.KindFlowStart, "nofid"),
		ev("hv1", "s", 15, "teleport", "odd"),
		ev("hv2", "s", 16, ingest.KindLog, "uncorrected"),
	)
	in.Parser.(*sliceParser).evs = append(in.Parser.(*sliceParser).evs,
		ingest.Event{Host: "hv1", Source: "s", SourceSeq: 8, LocalNs: 17, Kind: ingest.KindSpan, Name: "neg", DurNs: -5})
	out, sum := mergeAll(t, []Input{in}, MergeOptions{Offsets: offs})
	want := map[string]Issue{"orphan": IssueEndWithoutBegin, "nofid": IssueFlowWithoutID, "odd": IssueUnknownKind,
		"uncorrected": IssueNoOffsets, "neg": IssueNegativeDuration}
	for _, e := range out {
		if e.Issue != want[e.Name] {
			t.Errorf("%s: issue %q, want %q", e.Name, e.Issue, want[e.Name])
		}
		if e.Name == "uncorrected" && (e.Corrected || e.TimeNs != 16) {
			t.Errorf("uncorrected event: corrected %v time %d", e.Corrected, e.TimeNs)
		}
	}
	if len(out) != 8 {
		t.Errorf("%d events out of 8", len(out))
	}
	if sum.Inconsistent != 6 || sum.IssueCounts[IssueBeginWithoutEnd] != 1 {
		t.Errorf("inconsistent %d, counts %v", sum.Inconsistent, sum.IssueCounts)
	}
	last := sum.Inconsistencies[len(sum.Inconsistencies)-1]
	if last.Issue != IssueBeginWithoutEnd || last.Seq != 2 || last.Count != 1 {
		t.Errorf("unclosed begin reported as %+v", last)
	}
}

func TestMergeStrict(t *testing.T) {
	in := input("a.jsonl", ev("hv1", "s", 1, ingest.KindLog, "ok"), ev("hv1", "s", 2, ingest.KindEnd, "orphan"), ev("hv1", "s", 3, ingest.KindLog, "after"))
	var got []string
	_, err := Merge([]Input{in}, MergeOptions{Strict: true}, func(e Event) error {
		got = append(got, e.Name)
		return nil
	})
	if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), "a.jsonl: host hv1 source s seq 2") {
		t.Errorf("error %v", err)
	}
	if strings.Join(got, ",") != "ok" {
		t.Errorf("emitted %v before the error, want ok", got)
	}
}

func TestMergeParserErrors(t *testing.T) {
	lineErr := &ingest.LineError{File: "a.jsonl", Line: 3, Err: ingest.ErrMalformed}
	tests := []struct {
		name    string
		err     error
		wantMsg string
	}{
		{"a line error is returned as it is", lineErr, "a.jsonl:3: malformed record"},
		{"an I/O error names the input", errTest, "a.jsonl: test error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &sliceParser{evs: []ingest.Event{ev("hv1", "s", 1, "log", "x"), ev("hv1", "s", 2, "log", "y")}, err: tc.err}
			n := 0
			_, err := Merge([]Input{{Name: "a.jsonl", Parser: p}, input("b", ev("hv2", "s", 5, "log", "z"))},
				MergeOptions{}, func(Event) error { n++; return nil })
			if err == nil || err.Error() != tc.wantMsg {
				t.Errorf("error %v, want %q", err, tc.wantMsg)
			}
			if n != 2 {
				t.Errorf("%d events emitted before the error, want 2", n)
			}
		})
	}
}

func TestMergeEmitErrorStopsEveryInput(t *testing.T) {
	var inputs []Input
	for i := range 4 {
		var evs []ingest.Event
		for j := range 10000 {
			evs = append(evs, ev(fmt.Sprint("hv", i), "s", int64(j+1), "log", ""))
		}
		inputs = append(inputs, input(fmt.Sprint(i), evs...))
	}
	n := 0
	_, err := Merge(inputs, MergeOptions{BatchEvents: 16}, func(Event) error {
		if n++; n == 100 {
			return errTest
		}
		return nil
	})
	if !errors.Is(err, errTest) {
		t.Errorf("Merge error %v, want the emit error", err)
	}
	if n != 100 {
		t.Errorf("emit called %d times after its error", n-100)
	}
}

func TestMergeCountsBadRecords(t *testing.T) {
	bad := NewBadRecords(1)
	bad.Add(&ingest.LineError{File: "a", Line: 2, Err: ingest.ErrMalformed})
	bad.Add(&ingest.LineError{File: "a", Line: 5, Err: ingest.ErrMalformed})
	in := input("a", ev("hv1", "s", 1, "log", ""))
	in.Parser.(*sliceParser).bad = 2
	in.Bad = bad
	_, sum := mergeAll(t, []Input{in}, MergeOptions{})
	if got := sum.Inputs[0]; got.BadRecords != 2 || len(got.Bad) != 1 || got.Bad[0].Line != 2 {
		t.Errorf("input summary %+v", got)
	}
	if sum.Clean() {
		t.Error("a summary with bad records is clean")
	}
	var b strings.Builder
	if err := sum.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 malformed records skipped", "malformed: a:2: malformed record", "and 1 more malformed"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary text lacks %q:\n%s", want, b.String())
		}
	}
}

func TestMergeDefaultHostAndStampedEvents(t *testing.T) {
	offs, err := NewOffsets([]Sample{{Host: "dflt", OffsetNs: 100}})
	if err != nil {
		t.Fatal(err)
	}
	stamped := ev("", "s", 1000, "log", "stamped")
	stamped.RefEarliest, stamped.RefLatest = 400, 600
	in := input("a", ev("", "s", 300, "log", "plain"), stamped)
	in.Host = "dflt"
	out, _ := mergeAll(t, []Input{in}, MergeOptions{Offsets: offs})
	if out[0].Host != "dflt" || out[0].TimeNs != 200 || out[1].TimeNs != 500 || !out[1].Corrected {
		t.Errorf("events %+v", out)
	}
}

// TestMergeMatchesNaive checks the tournament merge against a naive one
// (scan every input's head) on random inputs, some with late events.
func TestMergeMatchesNaive(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	for trial := range 100 {
		var inputs [][]ingest.Event
		for i := range 1 + rng.Intn(10) {
			var evs []ingest.Event
			ts := int64(0)
			for j := range rng.Intn(40) {
				ts = max(ts+rng.Int63n(5)-1, 0) // ties and a few steps back
				e := ev(fmt.Sprint("h", rng.Intn(3)), fmt.Sprint("s", rng.Intn(2)), ts+1, "log", "")
				e.SourceSeq = uint64(j + 1)
				_ = i
				evs = append(evs, e)
			}
			inputs = append(inputs, evs)
		}
		want := naiveMerge(inputs)
		var ins []Input
		for i, evs := range inputs {
			ins = append(ins, Input{Name: fmt.Sprint(i), Parser: &sliceParser{evs: append([]ingest.Event(nil), evs...)}})
		}
		got, _ := mergeAll(t, ins, MergeOptions{BatchEvents: 1 + rng.Intn(8)})
		if a, b := keys(got), keys(want); a != b {
			t.Fatalf("seed %d trial %d:\nmerge %s\nnaive %s", seed, trial, a, b)
		}
	}
}

func naiveMerge(inputs [][]ingest.Event) []Event {
	pos := make([]int, len(inputs))
	var out []Event
	for {
		best := -1
		var bestEv Event
		for i, evs := range inputs {
			if pos[i] == len(evs) {
				continue
			}
			e := Event{Event: evs[pos[i]], TimeNs: evs[pos[i]].LocalNs, Input: i}
			if best < 0 || before(&e, &bestEv) {
				best, bestEv = i, e
			}
		}
		if best < 0 {
			return out
		}
		out = append(out, bestEv)
		pos[best]++
	}
}

func keys(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%d:%s/%s/%d@%d ", e.TimeNs, e.Host, e.Source, e.SourceSeq, e.Input)
	}
	return b.String()
}
