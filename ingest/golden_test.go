package ingest

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata golden files with the current output")

// renderEvent renders e as stable text: one header line, then one indented
// line per Attr. Zero Ref and Dur fields are left out. The time of an
// Untimed event is "none"; a LocalNs of 0 is a time, spelt out.
func renderEvent(e Event) string {
	var b strings.Builder
	ts := "none"
	if !e.Untimed {
		ts = time.Unix(0, e.LocalNs).UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
	}
	fmt.Fprintf(&b, "%q#%d host=%q ts=%s kind=%s", e.Source, e.SourceSeq, e.Host, ts, e.Kind)
	if e.DurNs != 0 {
		fmt.Fprintf(&b, " dur=%dns", e.DurNs)
	}
	if e.RefEarliest != 0 || e.RefLatest != 0 {
		fmt.Fprintf(&b, " ref=[%s,%s]", renderNs(e.RefEarliest), renderNs(e.RefLatest))
	}
	fmt.Fprintf(&b, " name=%q\n", e.Name)
	for _, a := range e.Attrs {
		fmt.Fprintf(&b, "    %s=%q\n", renderKey(a.Key), a.Value)
	}
	return b.String()
}

// renderNs prints ns since the epoch as UTC with all nine digits; 0 as 0.
func renderNs(ns int64) string {
	if ns == 0 {
		return "0"
	}
	return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
}

// renderKey quotes a key unless it is plain printable ASCII without '='.
func renderKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f || c == '=' || c == '"' {
			return strconv.Quote(k)
		}
	}
	return k
}

// transcript drains the parser mk builds under opts, not strict, and
// renders its events and skipped records in the order they occur, then
// the skip count.
func transcript(t testing.TB, mk func(Options) Parser, opts Options) string {
	t.Helper()
	var b strings.Builder
	opts.Strict = false
	opts.OnError = func(le *LineError) { fmt.Fprintf(&b, "error: %v\n", le) }
	p := mk(opts)
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		b.WriteString(renderEvent(e))
	}
	if c, ok := p.(interface{ Errors() int }); ok {
		fmt.Fprintf(&b, "skipped: %d\n", c.Errors())
	}
	return b.String()
}

// checkGolden compares got with the file at path, or rewrites the file
// under -update.
func checkGolden(t *testing.T, path string, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if d := firstDiff(string(want), got); d != "" {
		t.Errorf("%s differs from the output (go test -run %s -update rewrites it):\n%s", path, t.Name(), d)
	}
}

// firstDiff describes the first line where want and got differ, or "".
func firstDiff(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; ; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl || i >= len(w) || i >= len(g) {
			return fmt.Sprintf("line %d:\nwant: %s\n got: %s\n(%d lines wanted, %d got)", i+1, wl, gl, len(w), len(g))
		}
	}
}
