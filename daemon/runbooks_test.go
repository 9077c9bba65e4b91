package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/clockd/clockd/ordering/runbook"
)

// TestStepOutput: the digest covers everything written, the tail is the
// last MaxOutputTail bytes at most, and always valid UTF-8, even when the
// cut splits a character or the step wrote binary.
func TestStepOutput(t *testing.T) {
	o := newStepOutput()
	var all []byte
	for i := 0; i < 500; i++ {
		p := []byte(strings.Repeat("é", i%7) + "line\n")
		if i == 250 {
			p = append(p, 0xff, 0xfe)
		}
		all = append(all, p...)
		o.Write(p)
	}
	want := sha256.Sum256(all)
	if got := o.digest(); got != hex.EncodeToString(want[:]) {
		t.Fatalf("digest %s, want %x", got, want)
	}
	tail := o.tail()
	if len(tail) > runbook.MaxOutputTail || !utf8.ValidString(tail) {
		t.Fatalf("tail of %d bytes, valid UTF-8 %v", len(tail), utf8.ValidString(tail))
	}
	if !strings.HasSuffix(string(all), tail[4:]) || !strings.HasSuffix(tail, "line\n") {
		t.Fatalf("tail is not the output's end: %q", tail[len(tail)-40:])
	}

	bin := newStepOutput()
	bin.Write([]byte{0xff, 'a', 0xc3}) // a character cut short at the end
	if got := bin.tail(); !utf8.ValidString(got) || !strings.Contains(got, "a") {
		t.Fatalf("binary tail %q", got)
	}
}

func TestRetryDelay(t *testing.T) {
	for _, c := range []struct {
		failures int
		want     time.Duration
	}{{0, 0}, {1, time.Second}, {2, 2 * time.Second}, {6, 32 * time.Second}, {7, time.Minute}, {100, time.Minute}} {
		if got := retryDelay(c.failures); got != c.want {
			t.Errorf("retryDelay(%d) = %v, want %v", c.failures, got, c.want)
		}
	}
}
