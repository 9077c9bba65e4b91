package shm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/clockd/clockd/vclock"
)

// childPageEnv names the page TestHelperReaderProcess reads when this
// test binary runs as the second process.
const childPageEnv = "CLOCKD_SHM_TEST_PAGE"

const childMarker = "shm-child-report "

// childReport is what the second process computes from the page.
type childReport struct {
	Snapshot Snapshot
	// At is Snapshot.At(AtMono).
	AtMono int64
	At     vclock.Reading
	// Now is Reader.Now, called between NowBefore and NowAfter.
	NowBefore, NowAfter int64
	Now                 vclock.Reading
}

// TestHelperReaderProcess is the second process of
// TestSecondProcessComputesTheSameReading; run directly, it skips.
func TestHelperReaderProcess(t *testing.T) {
	path := os.Getenv(childPageEnv)
	if path == "" {
		t.Skip("runs as the child of TestSecondProcessComputesTheSameReading")
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rep childReport
	if rep.Snapshot, err = r.Snapshot(); err != nil {
		t.Fatal(err)
	}
	rep.AtMono = vclock.MonoNow()
	rep.At = rep.Snapshot.At(rep.AtMono)
	rep.NowBefore = vclock.MonoNow()
	if rep.Now, err = r.Now(); err != nil {
		t.Fatal(err)
	}
	rep.NowAfter = vclock.MonoNow()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", childMarker, b)
}

func runChild(t *testing.T, path string) childReport {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperReaderProcess$", "-test.count=1")
	// Without atexit_sleep_ms=0 a child built with -race idles a second
	// before exiting.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), childPageEnv+"="+path, "GORACE="+gorace)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("second process: %v\n%s", err, out)
	}
	for line := range bytes.Lines(out) {
		if rest, ok := bytes.CutPrefix(line, []byte(childMarker)); ok {
			var rep childReport
			if err := json.Unmarshal(rest, &rep); err != nil {
				t.Fatalf("report %q: %v", rest, err)
			}
			return rep
		}
	}
	t.Fatalf("second process printed no report:\n%s", out)
	return childReport{}
}

// TestSecondProcessComputesTheSameReading publishes a segment, has another
// process map the page and compute readings, and checks them against
// Segment.At here.
func TestSecondProcessComputesTheSameReading(t *testing.T) {
	w, path := create(t)
	w.SetMaxAge(0)
	seg := slewing()
	w.Publish(seg)
	for _, c := range []struct {
		name   string
		before func(t *testing.T)
		status vclock.Status
	}{
		{"live", func(*testing.T) {}, vclock.StatusSynchronized},
		{"stopped", func(t *testing.T) {
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}, vclock.StatusUnsynchronized},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.before(t)
			rep := runChild(t, path)
			if rep.Snapshot.Segment != seg || rep.Snapshot.Stopped != (c.status == vclock.StatusUnsynchronized) {
				t.Fatalf("child read %+v, published %+v", rep.Snapshot, seg)
			}
			want := seg.At(rep.AtMono)
			want.Status = c.status
			if rep.At != want {
				t.Fatalf("child computed %+v at mono %d, Segment.At gives %+v", rep.At, rep.AtMono, want)
			}
			lo, hi := seg.At(rep.NowBefore), seg.At(rep.NowAfter)
			if rep.Now.Status != c.status || rep.Now.Time < lo.Time || rep.Now.Time > hi.Time ||
				rep.Now.Earliest > rep.Now.Time || rep.Now.Latest < rep.Now.Time {
				t.Fatalf("child Now = %+v, want %v between %+v and %+v", rep.Now, c.status, lo, hi)
			}
		})
	}
}
