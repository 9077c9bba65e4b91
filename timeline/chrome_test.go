package timeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/clockd/clockd/ingest"
)

// chromeTrace is the decoded Trace Event Format object.
type chromeTrace struct {
	TraceEvents []map[string]any `json:"traceEvents"`
	OtherData   map[string]any   `json:"otherData"`
}

// checkChrome decodes out and checks the structure the viewers rely on.
func checkChrome(t *testing.T, out []byte) chromeTrace {
	t.Helper()
	var tr chromeTrace
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&tr); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatal("data after the JSON object")
	}
	if tr.OtherData["clockd_time_base_unix_ns"] == nil {
		t.Error("otherData lacks the time base")
	}
	type thread struct{ pid, tid string }
	procNames := map[string]bool{}
	threadNames := map[thread]bool{}
	stacks := map[thread][]float64{} // ts of the open B events
	type slice struct{ from, to float64 }
	slices := map[thread][]slice{}
	flowsStarted := map[string]bool{}
	for i, e := range tr.TraceEvents {
		where := fmt.Sprintf("event %d %v", i, e)
		ph, _ := e["ph"].(string)
		pid := num(t, e, "pid", where)
		if ph == "M" {
			args, _ := e["args"].(map[string]any)
			switch e["name"] {
			case "process_name":
				procNames[pid] = args["name"] != nil
			case "thread_name":
				threadNames[thread{pid, num(t, e, "tid", where)}] = args["name"] != nil
			}
			continue
		}
		th := thread{pid, num(t, e, "tid", where)}
		if !procNames[pid] || !threadNames[th] {
			t.Errorf("%s: no process_name or thread_name metadata before it", where)
		}
		if _, ok := e["name"].(string); !ok {
			t.Errorf("%s: no name", where)
		}
		ts := fnum(t, e, "ts", where)
		switch ph {
		case "X":
			dur := fnum(t, e, "dur", where)
			if dur < 0 {
				t.Errorf("%s: negative dur", where)
			}
			slices[th] = append(slices[th], slice{ts, ts + dur})
		case "B":
			stacks[th] = append(stacks[th], ts)
		case "E":
			st := stacks[th]
			if len(st) == 0 {
				t.Errorf("%s: E without an open B on its thread", where)
				continue
			}
			if ts < st[len(st)-1] {
				t.Errorf("%s: E before its B", where)
			}
			slices[th] = append(slices[th], slice{st[len(st)-1], ts})
			stacks[th] = st[:len(st)-1]
		case "i":
			if e["s"] != "t" {
				t.Errorf("%s: instant without s:t", where)
			}
		case "C":
			args, _ := e["args"].(map[string]any)
			if len(args) == 0 {
				t.Errorf("%s: counter without values", where)
			}
			for k, v := range args {
				if _, ok := v.(json.Number); !ok {
					t.Errorf("%s: counter series %s is not a number", where, k)
				}
			}
		case "s", "t", "f":
			id := num(t, e, "id", where)
			if e["bp"] != "e" {
				t.Errorf("%s: flow without bp:e", where)
			}
			if ph == "s" {
				flowsStarted[id] = true
			} else if !flowsStarted[id] {
				t.Errorf("%s: flow %s step or end before its start", where, id)
			}
			bound := len(stacks[th]) > 0
			for _, s := range slices[th] {
				bound = bound || s.from <= ts && ts <= s.to
			}
			if !bound {
				t.Errorf("%s: no enclosing slice to bind to", where)
			}
		default:
			t.Errorf("%s: unexpected phase %q", where, ph)
		}
	}
	for th, st := range stacks {
		if len(st) > 0 {
			t.Errorf("thread %v: %d B events never ended", th, len(st))
		}
	}
	return tr
}

func num(t *testing.T, e map[string]any, key, where string) string {
	t.Helper()
	n, ok := e[key].(json.Number)
	if !ok {
		t.Errorf("%s: %s missing or not a number", where, key)
		return ""
	}
	if _, err := n.Int64(); err != nil {
		t.Errorf("%s: %s is not an integer", where, key)
	}
	return n.String()
}

func fnum(t *testing.T, e map[string]any, key, where string) float64 {
	t.Helper()
	n, ok := e[key].(json.Number)
	if !ok {
		t.Errorf("%s: %s missing or not a number", where, key)
		return 0
	}
	f, _ := n.Float64()
	return f
}

func TestChromeStructureThreeHosts(t *testing.T) {
	inputs, opts := threeHosts()
	var buf bytes.Buffer
	w := NewChromeWriter(&buf)
	if _, err := Merge(inputs, opts, w.Write); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	tr := checkChrome(t, buf.Bytes())
	phases := map[string]int{}
	for _, e := range tr.TraceEvents {
		phases[e["ph"].(string)]++
	}
	for _, ph := range []string{"M", "X", "B", "E", "i", "C", "s", "t", "f"} {
		if phases[ph] == 0 {
			t.Errorf("no %s event in the three-host trace", ph)
		}
	}
}

// TestChromeStructureRandom writes random well-formed traces of several
// hosts (nested begin/end, spans, flows between hosts) and checks the
// structure of each.
func TestChromeStructureRandom(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	for trial := range 20 {
		var inputs []Input
		flow := 0
		for h := range 1 + rng.Intn(4) {
			var evs []ingest.Event
			host := fmt.Sprint("hv", h)
			for s := range 1 + rng.Intn(3) {
				src := fmt.Sprint("src", s)
				ts := base + rng.Int63n(1e6)
				depth := 0
				for range rng.Intn(60) {
					ts += 1 + rng.Int63n(1e5)
					switch k := rng.Intn(6); {
					case k == 0 || depth == 0 && k == 1:
						evs = append(evs, ev(host, src, ts, ingest.KindBegin, "b"))
						depth++
					case k == 1:
						evs = append(evs, ev(host, src, ts, ingest.KindEnd, "b"))
						depth--
					case k == 2:
						e := ev(host, src, ts, ingest.KindSpan, "x", "flow_id", fmt.Sprint(rng.Intn(3)))
						e.DurNs = rng.Int63n(1e5)
						evs = append(evs, e)
					case k == 3:
						flow++
						evs = append(evs, ev(host, src, ts, ingest.KindFlowStart, "send", "flow_id", fmt.Sprint("f", flow)))
					case k == 4:
						evs = append(evs, ev(host, src, ts, ingest.KindCounter, "c", "v", fmt.Sprint(rng.Intn(9))))
					default:
						evs = append(evs, ev(host, src, ts, ingest.KindLog, "l", "flow_id", fmt.Sprint("f", rng.Intn(flow+1))))
					}
				}
				for ; depth > 0; depth-- {
					ts++
					evs = append(evs, ev(host, src, ts, ingest.KindEnd, "b"))
				}
			}
			inputs = append(inputs, input(host, evs...))
		}
		var buf bytes.Buffer
		w := NewChromeWriter(&buf)
		if _, err := Merge(inputs, MergeOptions{}, w.Write); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !t.Run(fmt.Sprint("trial", trial), func(t *testing.T) { checkChrome(t, buf.Bytes()) }) {
			t.Fatalf("seed %d", seed)
		}
	}
}

func TestChromeInconsistentEventsStayValid(t *testing.T) {
	neg := ev("hv1", "s", base+3, ingest.KindSpan, "negative")
	neg.DurNs = -10
	in := input("a",
		ev("hv1", "s", base+1, ingest.KindEnd, "orphan end"),
		ev("hv1", "s", base+2, ingest.KindFlowStart, "flow without id"),
		neg,
		ev("hv1", "s", base+4, "warp", "unknown kind"),
		ev("hv1", "s", base+5, ingest.KindCounter, "counter without number", "v", "high"),
	)
	var buf bytes.Buffer
	w := NewChromeWriter(&buf)
	if _, err := Merge([]Input{in}, MergeOptions{}, w.Write); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	tr := checkChrome(t, buf.Bytes())
	instants := 0
	for _, e := range tr.TraceEvents {
		if e["ph"] == "i" {
			instants++
		}
	}
	if instants != 5 {
		t.Errorf("%d of the 5 inconsistent events written as instants", instants)
	}
}
