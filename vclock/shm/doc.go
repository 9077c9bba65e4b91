// Package shm is the local fast path to the reference clock. The daemon
// publishes its current vclock.Segment in a shared page, a 4096-byte
// regular file such as /run/clockd/clock; any process on the host maps it
// read-only and computes {time, earliest, latest, status} without an RPC,
// by evaluating the segment at CLOCK_MONOTONIC, which every process on a
// host shares. docs/shared-page.md describes the page for readers written
// in other languages.
//
// # Usage
//
// The daemon, the page's only writer:
//
//	w, err := shm.Create("/run/clockd/clock") // no segment yet; DefaultMaxAge
//	w.SetMaxAge(maxAge)                        // optional
//	w.Publish(seg)                             // on every new segment; a heartbeat too
//	w.Touch()                                  // every second or so: a heartbeat
//	w.Close()                                  // on shutdown: readers turn UNSYNCHRONIZED
//
// A client:
//
//	r, err := shm.Open("/run/clockd/clock")
//	rd, err := r.Now() // vclock.Reading
//
// # Layout
//
// The page is 512 words of 8 bytes, each a little-endian two's-complement
// integer on every host:
//
//	byte  word   name            type  meaning
//	   0     0   magic           u64   the bytes "CLKDPAGE" (Magic)
//	   8     1   version         u64   2 (Version)
//	  16     2   size            u64   4096 (PageSize), the length of the file
//	  24     3   seq             u64   seqlock sequence: even stable, odd mid-write
//	  32     4   status          i64   0 nothing published yet, else vclock.Status (1..4)
//	  40     5   mono_ns         i64   Segment.MonoNs, CLOCK_MONOTONIC ns
//	  48     6   time_ns         i64   Segment.TimeNs, Unix ns
//	  56     7   target_ns       i64   Segment.TargetNs, Unix ns
//	  64     8   err_ns          i64   Segment.ErrNs, ns; < 0 unbounded
//	  72     9   slew_ppm        i64   Segment.SlewPPM
//	  80    10   drift_ppm       i64   Segment.DriftPPM
//	  88    11   holdover_at_ns  i64   Segment.HoldoverAtNs, CLOCK_MONOTONIC ns
//	  96    12   unsync_at_ns    i64   Segment.UnsyncAtNs, CLOCK_MONOTONIC ns
//	 104    13   heartbeat_ns    i64   CLOCK_MONOTONIC at the last Publish or Touch
//	 112    14   max_age_ns      i64   heartbeat promise, ns; 2⁶³−1 none
//	 120    15   flags           u64   bit 0 stopped; other bits 0
//	 128    16   freq_ppb        i64   Segment.FreqPPB, |freq_ppb| < 10⁹
//	 136  17-511 reserved        -     0
//
// Words 0–2 are written before the file gets its name and never change.
// Words 4–16 change only under the seqlock. Fields may be added in the
// reserved words, which readers of this version ignore, only if ignoring
// them leaves every reading the same; any other change takes a new
// version, and readers refuse versions they do not know. (Version 2 added
// freq_ppb, which changes readings.)
//
// # Seqlock
//
// The writer, serialised by a mutex: store seq+1 (odd), store words 4–16,
// store seq+2 (even). Every access to the page on either side is a 64-bit
// sync/atomic operation, sequentially consistent in the Go memory model,
// so a read that finds seq even and unchanged around its loads of words
// 4–16 saw them all from one write. A reader retries up to 1000 times,
// yielding the processor between tries, then fails with ErrBusy.
//
// # Liveness
//
// A segment can legitimately hold for a long time, so its anchor's age
// says nothing about the writer. Instead the writer stamps heartbeat_ns on
// every Publish and Touch and promises a new stamp within max_age_ns. The
// page is live at monotonic time m when flags bit 0 is clear and
// m − heartbeat_ns <= max_age_ns; a heartbeat later than m counts as fresh.
// A reading taken from a page that is not live has status UNSYNCHRONIZED
// and keeps the segment's bounds. Readers read the page first and
// CLOCK_MONOTONIC second, so m is never older than the heartbeat they saw.
//
// # Guarantees
//
//   - A successful read returns words 4–16 as one Publish, Touch,
//     SetMaxAge or Close left them, never a mix of two.
//   - Reader.Now equals Snapshot.At at a CLOCK_MONOTONIC reading taken after
//     the page was read: vclock.Segment.At of the published segment, with
//     status UNSYNCHRONIZED when the page is not live.
//   - Reader.Segment is the published segment with liveness folded in
//     (Snapshot.Effective): kept and evaluated later, a SYNCHRONIZED segment
//     still turns UNSYNCHRONIZED once the heartbeat is overdue.
//   - No reader maps a half-written header: Create fills a temporary file
//     in the same directory and renames it over the path.
//   - A closed page reads UNSYNCHRONIZED at once; a writer that died reads
//     UNSYNCHRONIZED from max_age_ns after its last heartbeat.
//
// # Hazards
//
//   - One writer per path. A second Create replaces the file; the first
//     Writer then writes to a file no new reader opens.
//   - A Reader follows the file it mapped, not the path. After the daemon
//     restarts, the old page reads stopped (clean exit) or stale (crash);
//     a client that finds its page not live (Snapshot.Stopped, Snapshot.Live)
//     should Open the path again.
//   - Only the Writer may change the file. A mapped file that is truncated
//     makes every reader fault (SIGBUS); Create replaces, never truncates.
//   - CLOCK_MONOTONIC stops while the host is suspended, and so does the
//     heartbeat's age: after a resume the segment is off by the time spent
//     suspended until the writer publishes again, and liveness cannot tell.
//     The writer must republish on resume.
//   - Between a writer's death and max_age_ns, readers keep reporting the
//     segment's status. The bounds of a page that is not live rest on the
//     host oscillator staying within drift_ppm, as in holdover; a caller
//     that needs a guarantee treats UNSYNCHRONIZED as none.
//   - A writer that dies mid-write leaves seq odd: every read of that page
//     fails with ErrBusy, after its 1000 tries, until a new page is opened.
//   - Reader.Close while another goroutine reads the same Reader faults.
package shm
