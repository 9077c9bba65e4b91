package kvtest_test

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

const (
	kindGet    = "get"
	kindPut    = "put"
	kindAppend = "append"
	kindCAS    = "cas"
)

// checkTimeout bounds porcupine's search; a run that hits it fails, since
// nothing was proved.
const checkTimeout = 30 * time.Second

// opInput is one client operation as the history records it.
type opInput struct {
	Kind  string
	Key   string
	Value string // put, append: the argument; cas: the new value
	Old   string // cas: the expected value
}

func (in opInput) String() string {
	switch in.Kind {
	case kindGet:
		return fmt.Sprintf("get(%s)", in.Key)
	case kindCAS:
		return fmt.Sprintf("cas(%s, %q→%q)", in.Key, in.Old, in.Value)
	}
	return fmt.Sprintf("%s(%s, %q)", in.Kind, in.Key, in.Value)
}

// opOutput is what the operation returned. Unknown marks a write whose
// outcome the client never learned: it may have taken effect once, or
// never, and the model accepts any output for it.
type opOutput struct {
	Value   string // get: the value read; writes: the value before
	OK      bool   // cas: whether it swapped
	Unknown bool
}

// describeOp renders one operation, such as `cas(k, "a"→"b") → "a" swapped`.
func describeOp(in opInput, out opOutput) string {
	switch {
	case out.Unknown:
		return fmt.Sprintf("%s → unknown", in)
	case in.Kind == kindGet:
		return fmt.Sprintf("%s → %q", in, out.Value)
	case in.Kind == kindCAS && !out.OK:
		return fmt.Sprintf("%s → %q not swapped", in, out.Value)
	case in.Kind == kindCAS:
		return fmt.Sprintf("%s → %q swapped", in, out.Value)
	}
	return fmt.Sprintf("%s → was %q", in, out.Value)
}

// kvModel is the sequential specification, partitioned by key: the state
// of a partition is one key's value. It is nondeterministic because a
// write of unknown outcome either took effect or never did; porcupine
// turns it into a deterministic model over sets of values.
var kvModel = (&porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(opInput).Key
			byKey[k] = append(byKey[k], op)
		}
		var parts [][]porcupine.Operation
		for _, k := range slices.Sorted(maps.Keys(byKey)) {
			parts = append(parts, byKey[k])
		}
		return parts
	},
	Init: func() []any { return []any{""} },
	Step: func(state, input, output any) []any {
		return step(state.(string), input.(opInput), output.(opOutput))
	},
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		h.Write([]byte(state.(string)))
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		return describeOp(input.(opInput), output.(opOutput))
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}).ToModel()

// step returns the values the key may hold after in ran on the value cur
// and returned out: none if out is impossible, both cur and the written
// value for a write of unknown outcome.
func step(cur string, in opInput, out opOutput) []any {
	next, want := cur, opOutput{Value: cur, OK: true}
	switch in.Kind {
	case kindGet:
	case kindPut:
		next = in.Value
	case kindAppend:
		next = cur + in.Value
	case kindCAS:
		if cur == in.Old {
			next = in.Value
		} else {
			want.OK = false
		}
	default:
		panic(fmt.Sprintf("model: unknown operation kind %q", in.Kind))
	}
	switch {
	case out.Unknown && in.Kind != kindGet:
		return []any{next, cur}
	case in.Kind == kindGet && !out.Unknown && out.Value == cur:
		return []any{cur}
	case in.Kind != kindGet && out == want:
		return []any{next}
	}
	return nil
}

// checkLinearizable closes the unsettled unknown writes after the end of
// the history and runs porcupine. On failure it writes the visualization to a
// file it names and logs the offending key's operations.
func (r *run) checkLinearizable() {
	r.mu.Lock()
	history := slices.Clone(r.history)
	r.mu.Unlock()
	var end int64
	for _, op := range history {
		end = max(end, op.Return, op.Call)
	}
	pending := 0
	for i := range history {
		if history[i].Return < 0 {
			history[i].Return = end + 1
			pending++
		}
	}
	began := time.Now()
	res, info := porcupine.CheckOperationsVerbose(kvModel, history, checkTimeout)
	r.t.Logf("porcupine: %d operations (%d unknown pending to the end) checked in %v: %s",
		len(history), pending, time.Since(began).Round(time.Millisecond), res)
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		r.t.Errorf("porcupine gave up after %v: linearizability not established (seed %d)", checkTimeout, r.seed)
		return
	}
	r.t.Errorf("history is not linearizable (seed %d)", r.seed)
	r.report(history, info)
}

// report writes the visualization and the full history to files it names,
// and logs, for every key that is not linearizable, the end of the
// longest linearizable prefix and the operations that could not follow it.
func (r *run) report(history []porcupine.Operation, info porcupine.LinearizationInfo) {
	if path, err := writeTemp("kvtest-history-*.html", func(f *os.File) error {
		return porcupine.Visualize(kvModel, info, f)
	}); err != nil {
		r.t.Errorf("write visualization: %v", err)
	} else {
		r.t.Logf("visualization: %s", path)
	}
	if path, err := writeTemp("kvtest-history-*.txt", func(f *os.File) error {
		_, err := f.WriteString(describe(sortByCall(history)))
		return err
	}); err == nil {
		r.t.Logf("full history: %s", path)
	}
	for _, part := range kvModel.Partition(history) {
		res, info := porcupine.CheckOperationsVerbose(kvModel, part, checkTimeout)
		if res != porcupine.Illegal {
			continue
		}
		var longest []porcupine.Operation
		for _, lin := range info.PartialLinearizationsOperations()[0] {
			if len(lin) > len(longest) {
				longest = lin
			}
		}
		type id struct {
			proc int
			call int64
		}
		in := map[id]bool{}
		for _, op := range longest {
			in[id{op.ClientId, op.Call}] = true
		}
		var rest []porcupine.Operation
		for _, op := range part {
			if !in[id{op.ClientId, op.Call}] {
				rest = append(rest, op)
			}
		}
		rest = sortByCall(rest)
		r.t.Logf("key %q: %d of %d operations linearize; the longest prefix ends with\n%s"+
			"and none of these can come next (first by call time):\n%s",
			part[0].Input.(opInput).Key, len(longest), len(part),
			describe(longest[max(0, len(longest)-8):]), describe(rest[:min(len(rest), 12)]))
	}
}

func writeTemp(pattern string, write func(*os.File) error) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", err
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

func sortByCall(ops []porcupine.Operation) []porcupine.Operation {
	ops = slices.Clone(ops)
	slices.SortStableFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	return ops
}

// describe lists ops in the order given, times in milliseconds since the
// run began.
func describe(ops []porcupine.Operation) string {
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, "  p%-3d [%9.3f, %9.3f] ms  %s\n", op.ClientId,
			float64(op.Call)/1e6, float64(op.Return)/1e6, describeOp(op.Input.(opInput), op.Output.(opOutput)))
	}
	return b.String()
}

// TestModel checks the model on small hand-made histories, so that the
// faults test's verdict means something: stale reads, lost or doubled
// writes and false CAS results are caught, and writes of unknown outcome
// may or may not take effect, but only once, after their call and before
// they settle.
func TestModel(t *testing.T) {
	type op struct {
		in        opInput
		out       opOutput
		call, ret int64 // ret < 0: pending to the end
	}
	put := func(v string) opInput { return opInput{Kind: kindPut, Key: "k", Value: v} }
	app := func(v string) opInput { return opInput{Kind: kindAppend, Key: "k", Value: v} }
	get := opInput{Kind: kindGet, Key: "k"}
	val := func(v string) opOutput { return opOutput{Value: v} }
	was := func(v string) opOutput { return opOutput{Value: v, OK: true} }
	unknown := opOutput{Unknown: true}
	tests := []struct {
		name string
		ops  []op
		want bool
	}{
		{"read after write", []op{{put("x"), was(""), 0, 10}, {get, val("x"), 20, 30}}, true},
		{"stale read", []op{{put("x"), was(""), 0, 10}, {get, val(""), 20, 30}}, false},
		{"concurrent read sees old", []op{{put("x"), was(""), 0, 30}, {get, val(""), 10, 20}}, true},
		{"concurrent read sees new", []op{{put("x"), was(""), 0, 30}, {get, val("x"), 10, 20}}, true},
		{"read from the future", []op{{get, val("x"), 0, 10}, {put("x"), was(""), 20, 30}}, false},
		{"wrong previous value", []op{{put("x"), was(""), 0, 10}, {put("y"), was(""), 20, 30}}, false},
		{"unknown write seen", []op{{put("x"), unknown, 0, -1}, {get, val("x"), 20, 30}}, true},
		{"unknown write never seen", []op{{put("x"), unknown, 0, -1}, {get, val(""), 20, 30}}, true},
		{"unknown write seen then lost", []op{{put("x"), unknown, 0, -1},
			{get, val("x"), 20, 30}, {get, val(""), 40, 50}}, false},
		{"unknown write seen before its call", []op{{get, val("x"), 0, 10}, {put("x"), unknown, 20, -1}}, false},
		{"unknown append applied twice", []op{{app("a"), unknown, 0, -1}, {get, val("aa"), 20, 30}}, false},
		{"settled unknown write never applied", []op{{put("x"), unknown, 0, 15}, {get, val(""), 20, 30}}, true},
		{"settled unknown write applied", []op{{put("x"), unknown, 0, 15}, {get, val("x"), 20, 30}}, true},
		{"settled unknown write applied late", []op{{put("x"), unknown, 0, 15},
			{get, val(""), 20, 30}, {get, val("x"), 40, 50}}, false},
		{"cas on the wrong value", []op{{put("x"), was(""), 0, 10},
			{opInput{Kind: kindCAS, Key: "k", Old: "y", Value: "z"}, was("x"), 20, 30}}, false},
		{"failed cas", []op{{put("x"), was(""), 0, 10},
			{opInput{Kind: kindCAS, Key: "k", Old: "y", Value: "z"}, val("x"), 20, 30}, {get, val("x"), 40, 50}}, true},
		{"keys are independent", []op{{put("x"), was(""), 0, 10},
			{opInput{Kind: kindGet, Key: "j"}, val(""), 20, 30}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var history []porcupine.Operation
			for i, o := range tt.ops {
				if o.ret < 0 {
					o.ret = 1000
				}
				history = append(history, porcupine.Operation{ClientId: i, Input: o.in, Output: o.out, Call: o.call, Return: o.ret})
			}
			if got := porcupine.CheckOperations(kvModel, history); got != tt.want {
				t.Fatalf("linearizable = %t, want %t", got, tt.want)
			}
		})
	}
}
