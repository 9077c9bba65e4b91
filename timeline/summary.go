package timeline

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clockd/clockd/ingest"
)

// DefaultMaxRecorded bounds each list of a Summary (late events,
// inconsistencies, bad records per input); the counts stay exact.
const DefaultMaxRecorded = 100

// Summary is what a merge or a log read saw besides the events: counts,
// and the first late, inconsistent and malformed records, so that none
// goes unreported.
type Summary struct {
	Inputs []InputSummary // one per Merge input, in input order
	Events int64          // events emitted

	Late       int64       // late events (each also emitted)
	LateEvents []LateEvent // the first of them, in input order

	Inconsistent    int64           // issues found (an event with two counts twice), plus unclosed begins
	Inconsistencies []Inconsistency // the first of them, in input order
	IssueCounts     map[Issue]int64 // Inconsistent by issue

	// Outside counts the events whose local time lies beyond the reach
	// of their host's offset history (before its earliest sample or
	// after its latest, by more than the largest gap between its
	// samples or MinHistoryReach): each was corrected with the offset of
	// the sample nearest it, the best available, but the host's clock
	// may have drifted since. They are warnings, neither inconsistent
	// nor errors in strict mode. OutsideHosts splits Outside by host,
	// sorted by host, for the first MaxRecorded hosts.
	Outside      int64
	OutsideHosts []OutsideHistory

	// The log readers (Export, Tail) fill these.
	FirstGSN, LastGSN uint64 // the GSNs of the first and last events emitted
	Gaps              []Gap  // GSN ranges the log did not return
	Replayed          int64  // events received again after a resume, and skipped
}

// InputSummary is one Merge input's share.
type InputSummary struct {
	Name   string
	Hosts  []string // the hosts of its events, sorted
	Events int64
	Late   int64
	// Inconsistent counts the issues of its events and its unclosed
	// begins.
	Inconsistent int64
	// BadRecords counts the malformed records its parser skipped; Bad
	// holds the first (when the input had a BadRecords).
	BadRecords int64
	Bad        []ingest.LineError
	// FirstNs and LastNs bound the TimeNs of its events (0 when none).
	FirstNs, LastNs int64
}

// LateEvent is a late event: TimeNs is LateNs before an event that came
// before it in its input.
type LateEvent struct {
	Input        string
	Host, Source string
	Seq          uint64 // SourceSeq
	TimeNs       int64
	LateNs       int64
}

// Inconsistency is one inconsistent event, or for IssueBeginWithoutEnd
// the Count begins of one host and source left open (Seq is the last).
type Inconsistency struct {
	Issue        Issue
	Input        string
	Host, Source string
	Seq          uint64 // SourceSeq
	GSN          uint64 // for events from the log
	Count        int64  // IssueBeginWithoutEnd only
}

// OutsideHistory is one host's share of Summary.Outside.
type OutsideHistory struct {
	Host   string
	Events int64
	// FirstRefNs and LastRefNs are the reference times of the host's
	// first and last samples.
	FirstRefNs, LastRefNs int64
}

// Gap is a range of GSNs [From, To] the log skipped (compacted away, or
// lost between a stream's end and its resumption).
type Gap struct{ From, To uint64 }

// Clean tells whether nothing needs reporting.
func (s *Summary) Clean() bool {
	if s.Late > 0 || s.Inconsistent > 0 || len(s.Gaps) > 0 || s.Outside > 0 {
		return false
	}
	for _, in := range s.Inputs {
		if in.BadRecords > 0 {
			return false
		}
	}
	return true
}

// WriteText prints the summary for people, as tracecat does on stderr.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d events", s.Events)
	if s.LastGSN != 0 {
		fmt.Fprintf(&b, " (GSN %d to %d)", s.FirstGSN, s.LastGSN)
	}
	fmt.Fprintf(&b, ", %d late, %d inconsistent", s.Late, s.Inconsistent)
	bad := int64(0)
	for _, in := range s.Inputs {
		bad += in.BadRecords
	}
	if len(s.Inputs) > 0 {
		fmt.Fprintf(&b, ", %d malformed records skipped", bad)
	}
	b.WriteString("\n")
	for _, in := range s.Inputs {
		fmt.Fprintf(&b, "  %s: %d events", in.Name, in.Events)
		if len(in.Hosts) > 0 {
			hosts := make([]string, len(in.Hosts))
			for i, h := range in.Hosts {
				hosts[i] = TextWord(h)
			}
			fmt.Fprintf(&b, " from %s", strings.Join(hosts, ", "))
		}
		if in.Events > 0 {
			fmt.Fprintf(&b, ", %s to %s", FormatTime(in.FirstNs), FormatTime(in.LastNs))
		}
		fmt.Fprintf(&b, "; %d late, %d inconsistent, %d malformed\n", in.Late, in.Inconsistent, in.BadRecords)
		for _, le := range in.Bad {
			fmt.Fprintf(&b, "    malformed: %v\n", &le)
		}
		if more := in.BadRecords - int64(len(in.Bad)); more > 0 && len(in.Bad) > 0 {
			fmt.Fprintf(&b, "    ... and %d more malformed records\n", more)
		}
	}
	s.writeIssues(&b)
	s.writeOutside(&b)
	for _, g := range s.Gaps {
		fmt.Fprintf(&b, "  gap: GSN %d to %d missing from the log\n", g.From, g.To)
	}
	if s.Replayed > 0 {
		fmt.Fprintf(&b, "  %d events received twice after a resume were skipped\n", s.Replayed)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (s *Summary) writeIssues(b *strings.Builder) {
	for _, l := range s.LateEvents {
		fmt.Fprintf(b, "  late: %s host %s source %s seq %d at %s, %v before an earlier event of its input\n",
			l.Input, TextWord(l.Host), TextWord(l.Source), l.Seq, FormatTime(l.TimeNs), time.Duration(l.LateNs))
	}
	if more := s.Late - int64(len(s.LateEvents)); more > 0 {
		fmt.Fprintf(b, "  ... and %d more late events\n", more)
	}
	for _, i := range s.Inconsistencies {
		fmt.Fprintf(b, "  %s: %s\n", i.Issue, i.where())
	}
	if more := s.Inconsistent - int64(len(s.Inconsistencies)); more > 0 {
		var counts []string
		for _, is := range issues {
			if n := s.IssueCounts[is]; n > 0 {
				counts = append(counts, fmt.Sprintf("%s %d", is, n))
			}
		}
		fmt.Fprintf(b, "  ... and %d more inconsistent (in all: %s)\n", more, strings.Join(counts, ", "))
	}
}

func (s *Summary) writeOutside(b *strings.Builder) {
	listed := int64(0)
	for _, o := range s.OutsideHosts {
		noun, verb := "events", "lie"
		if o.Events == 1 {
			noun, verb = "event", "lies"
		}
		span := fmt.Sprintf("from %s to %s", FormatTime(o.FirstRefNs), FormatTime(o.LastRefNs))
		if o.FirstRefNs == o.LastRefNs {
			span = "one sample, at " + FormatTime(o.FirstRefNs)
		}
		fmt.Fprintf(b, "  warning: %d %s of host %s %s outside its offset history (%s); corrected with the nearest sample\n",
			o.Events, noun, TextWord(o.Host), verb, span)
		listed += o.Events
	}
	if more := s.Outside - listed; more > 0 {
		fmt.Fprintf(b, "  warning: ... and %d more events of other hosts outside their offset history\n", more)
	}
}

func (i Inconsistency) where() string {
	var b strings.Builder
	if i.Input != "" {
		b.WriteString(i.Input + " ")
	}
	if i.GSN != 0 {
		fmt.Fprintf(&b, "GSN %d ", i.GSN)
	}
	fmt.Fprintf(&b, "host %s source %s seq %d", TextWord(i.Host), TextWord(i.Source), i.Seq)
	if i.Count > 0 {
		fmt.Fprintf(&b, " (%d open)", i.Count)
	}
	return b.String()
}

func sortInconsistencies(is []Inconsistency) {
	sort.Slice(is, func(a, b int) bool {
		if is[a].Host != is[b].Host {
			return is[a].Host < is[b].Host
		}
		return is[a].Source < is[b].Source
	})
}

// tally collects one stream's late events and issues, keeping the first
// max of each.
type tally struct {
	max          int
	late         int64
	lateEvents   []LateEvent
	inconsistent int64
	records      []Inconsistency
	counts       map[Issue]int64
}

func (t *tally) addLate(l LateEvent) {
	t.late++
	if len(t.lateEvents) < t.max {
		t.lateEvents = append(t.lateEvents, l)
	}
}

func (t *tally) addIssue(i Inconsistency) {
	n := max(i.Count, 1)
	t.inconsistent += n
	if t.counts == nil {
		t.counts = make(map[Issue]int64)
	}
	t.counts[i.Issue] += n
	if len(t.records) < t.max {
		t.records = append(t.records, i)
	}
}

// addTo adds t into s, keeping s's lists within max.
func (t *tally) addTo(s *Summary, max int) {
	s.Late += t.late
	s.Inconsistent += t.inconsistent
	for _, l := range t.lateEvents {
		if len(s.LateEvents) < max {
			s.LateEvents = append(s.LateEvents, l)
		}
	}
	for _, r := range t.records {
		if len(s.Inconsistencies) < max {
			s.Inconsistencies = append(s.Inconsistencies, r)
		}
	}
	for is, n := range t.counts {
		if s.IssueCounts == nil {
			s.IssueCounts = make(map[Issue]int64)
		}
		s.IssueCounts[is] += n
	}
}

// BadRecords keeps the first malformed records a parser skipped. Pass
// its Add as ingest.Options.OnError and the BadRecords as Input.Bad. It
// is safe for concurrent use.
type BadRecords struct {
	mu    sync.Mutex
	max   int
	first []ingest.LineError
	count int64
}

// NewBadRecords keeps up to max records (DefaultMaxRecorded if max <= 0).
func NewBadRecords(max int) *BadRecords {
	if max <= 0 {
		max = DefaultMaxRecorded
	}
	return &BadRecords{max: max}
}

// Add records le.
func (b *BadRecords) Add(le *ingest.LineError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count++
	if len(b.first) < b.max {
		b.first = append(b.first, *le)
	}
}

// First returns a copy of the records kept and the count of all added.
func (b *BadRecords) First() ([]ingest.LineError, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]ingest.LineError(nil), b.first...), b.count
}
