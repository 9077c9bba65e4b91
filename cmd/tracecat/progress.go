package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress bar settings.
const (
	// progressMinBytes is the input size below which no bar is drawn: a
	// merge that small ends before a bar would be read.
	progressMinBytes = 32 << 20
	// progressInterval spaces the redraws: at most 10 per second.
	progressInterval = 100 * time.Millisecond
	progressBarWidth = 30
)

// countingReader counts the bytes read through it into n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// showProgress decides whether to draw a bar: only on a terminal stderr,
// not when the events themselves go to that terminal, and only for
// inputs of known, large size.
func showProgress(disabled, stderrTTY, stdoutTTY bool, totalBytes int64) bool {
	return !disabled && stderrTTY && !stdoutTTY && totalBytes >= progressMinBytes
}

// progressLine renders the bar for read of total bytes after elapsed.
func progressLine(read, total int64, elapsed time.Duration) string {
	frac := 0.0
	if total > 0 {
		frac = min(float64(read)/float64(total), 1)
	}
	fill := int(frac * progressBarWidth)
	bar := strings.Repeat("=", fill)
	if fill < progressBarWidth {
		bar += ">" + strings.Repeat(" ", progressBarWidth-fill-1)
	}
	line := fmt.Sprintf("tracecat: [%s] %3.0f%%  %s / %s", bar, frac*100, sizeText(read), sizeText(total))
	if secs := elapsed.Seconds(); secs > 0 && read > 0 {
		rate := float64(read) / secs
		line += fmt.Sprintf("  %s/s", sizeText(int64(rate)))
		if read < total {
			eta := time.Duration(float64(total-read) / rate * float64(time.Second)).Round(time.Second)
			line += fmt.Sprintf("  ETA %v", eta)
		}
	}
	return line
}

// sizeText is n bytes in binary units.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// progressBar redraws the bar from a goroutine until stop.
type progressBar struct {
	stop func()
}

// startProgress draws the bar of read against total on w every
// progressInterval. stop erases it and waits for the goroutine.
func startProgress(w io.Writer, read *atomic.Int64, total int64) *progressBar {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\x1b[K")
				return
			case now := <-t.C:
				fmt.Fprint(w, "\r\x1b[K"+progressLine(read.Load(), total, now.Sub(start)))
			}
		}
	}()
	return &progressBar{stop: func() {
		close(done)
		wg.Wait()
	}}
}
