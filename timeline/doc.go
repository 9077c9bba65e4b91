// Package timeline merges trace events from many hosts into one timeline
// that can be trusted: each host's timestamps corrected to the cluster's
// reference clock, each source's order kept, ties broken the same way on
// every run, and every event that does not fit reported instead of
// dropped. It is the library behind tracecat.
//
// # Model
//
// An ingest.Event carries its host's local time (LocalNs), unless it is
// Untimed; a LocalNs of 0 is a time like any other. A host's wall
// clock is off the reference by an offset that drifts: clockd measures it
// and keeps the history as Samples (reference time, offset, error).
// Offsets.Correct turns a local time into reference time by interpolating
// the offset linearly between the two samples around it, by local time
// (local = ref + offset), and holding the first or last sample's offset
// outside them. A history reaches beyond its samples, by local time, by
// the largest gap between two consecutive samples, or MinHistoryReach
// (1 minute) if that is larger: an event further out is still corrected
// with the nearest sample's offset, the best there is, but counted per
// host in Summary.Outside and warned about, because the clock may have
// drifted far from that sample since. A manual offset
// (ParseManualOffset, "hv2=+1.5ms") is a constant history for its host,
// which reaches every time, and replaces the file's, if any. Every
// offset is at most ±MaxOffsetNs (200 years); a larger one is refused
// when read.
//
// The usage loop:
//
//	offs, _ := timeline.LoadOffsets(f)               // optional
//	w := timeline.NewJSONLWriter(out)                // or Text, Chrome
//	sum, err := timeline.Merge(inputs, timeline.MergeOptions{Offsets: offs}, w.Write)
//	w.Close()
//	sum.WriteText(os.Stderr)
//
// Merge reads each Input (a named ingest.Parser) in its own goroutine,
// places its events (Event.TimeNs, Corrected, LateNs, Issue) and merges
// them through a tournament tree keyed by (TimeNs, Host, Source,
// SourceSeq, input index). MergeEncoded does the same for output an
// Encoder renders event by event (JSONLEncoder): each input's goroutine
// renders its events too, so that rendering runs on every core, and the
// merge only compares times; MergeEncodedSlices hands the renderings on
// about 256 KiB at a time, without a copy, as slices of the renderings
// where they were made, which JSONLWriter.WriteEncodedSlices hands to a
// file in one gathering write (writev, on Linux) per call. An input whose parser is an
// ingest.LazyParser (JSON lines) and an encoder that is a FieldsEncoder
// (JSONLEncoder) skip the event's text: its Name and Attrs are rendered
// straight from the line read, and each value is copied once; attrs
// that stand in the line as the output has them (string members, one
// after the other) are copied as one text (ingest.LineFields.AttrRun).
// Export
// and Tail read the cluster's ordered
// log through an EventSource instead: there the order is the log's
// (GSN), and TimeNs is the midpoint of the reference interval the
// cluster stamped. Tail re-subscribes when its stream fails, up to
// LogOptions.Retries times in a row, and calls LogOptions.Retrying once
// when such a run of retries starts, so that a user learns why nothing
// arrives.
//
// # The offsets file
//
// `clockd offsets export` writes, and LoadOffsets reads, JSON lines: one
// object per sample, in any order:
//
//	{"host":"hv1","ref_unix_nano":1700000000000000000,"offset_nanos":-1234567,"err_nanos":50000}
//
// The fields:
//   - host: the host name, as events name it (required, not empty).
//   - ref_unix_nano: the reference time of the sample, ns since the Unix
//     epoch (required).
//   - offset_nanos: the host's wall clock minus the reference at that
//     time, ns (required): a host whose clock is 1.2 ms behind has
//     -1200000. At most ±MaxOffsetNs (200 years), which is far more than
//     a clock reset to 1970 is off, and keeps correction within int64;
//     ref_unix_nano + offset_nanos must be within int64 too.
//   - err_nanos: the uncertainty of offset_nanos, ns, >= 0 (optional, 0).
//
// Blank lines are skipped and unknown fields ignored, so that the format
// can grow. Two samples of one host at the same ref_unix_nano are an
// error. WriteOffsets writes exactly this format.
//
// # Guarantees
//
//   - Per-input order: the events of an input come out in the order the
//     input has them, so per-source order (FIFO) holds.
//   - Determinism: the output depends only on the inputs and options, not
//     on goroutine scheduling; equal times are ordered by (host, source,
//     source_seq, input index).
//   - Nothing is dropped or rewritten silently. An event earlier than one
//     before it in its input is late: it is emitted at its place in its
//     input with LateNs set, and listed in the Summary. An inconsistent
//     event (Issue: no timestamp, no offsets for its host, an end without
//     a begin, ...) is emitted with Issue set and counted; MergeOptions.
//     Strict turns the first into an error. Malformed records that the
//     parsers skip are counted per input. Events corrected beyond the
//     reach of their host's offset history are counted per host
//     (Summary.Outside): a warning, never an error.
//   - An event without a timestamp (Untimed) keeps its place in its
//     input: it takes the time of the event before it there, or, at the
//     start of an input, of the first event with a time (events of an
//     input that has none sort at time 0).
//   - An event the cluster already stamped (RefEarliest and RefLatest
//     set) sits at the midpoint of its interval; offsets do not apply.
//   - Correction never wraps around: an event whose corrected time would
//     be beyond int64's ns (before 1677 or after 2262) keeps its local
//     time, uncorrected, and is reported (IssueCorrectionOverflow).
//   - The writers stream: memory does not grow with the trace, only with
//     the number of hosts and sources (and flow ids, for Chrome).
//
// # Hazards
//
// HAZARD: correction is exact only as far as the samples are. Two events
// of different hosts closer than the hosts' offset errors plus the
// interpolation error (the offset's curvature between samples) may come
// out in either order. The ErrNs of the samples bounds the first.
//
// HAZARD: a host clock that was stepped backwards by more than the time
// between two samples makes some local times ambiguous: the same local
// time was read twice. Correct then uses the earliest pair of samples
// whose local times surround it, so events after the step may be placed
// at the earlier pass. The samples show the step; read the host's events
// around it with care.
//
// HAZARD: hosts are matched by name. Events whose host name differs from
// the offsets file's (a short name against an FQDN) are not corrected;
// each is reported as IssueNoOffsets.
//
// HAZARD: a GSN-ordered read (Tail) that resumes from GSN 0 (none
// received yet) after a failure starts again at the next event committed:
// events committed during the outage are not read. Pass a From to make a
// tail resumable.
package timeline
