// Package ingest turns trace files and streams into Events: JSON lines
// (NewJSONLines), the journald export format (NewJournalExport), RFC 5424
// syslog (NewSyslog), ftrace text from trace-cmd report or trace_pipe
// (NewFtrace), OTLP JSON spans (NewOTLP) and Chrome trace JSON
// (NewChrome). Detect sniffs a format from the first bytes; Open builds
// the parser for a format (FormatAuto detects).
//
// # Model
//
// Every parser streams: it holds one record (at most
// Options.MaxLineBytes) at a time, whatever the input's size. Next
// returns events in input order, numbering each source's events from 1
// (SourceSeq), and io.EOF at the end.
//
// # Guarantees
//
//   - A malformed record is reported with its file and line (LineError)
//     and counted (Errors). It is skipped, unless Options.Strict, when it
//     ends the parse. Nothing is dropped without being counted.
//   - Unknown formats, compressed and binary inputs get ErrUnknownFormat
//     with a message saying what the input looks like.
//   - Open skips one UTF-8 byte-order mark at the start of an input, as
//     Windows tools write it, before detecting the format.
//   - Only Event.Untimed means "no time": a LocalNs of 0 (a Chrome trace
//     from `go tool trace`, which starts at ts 0, or 1970-01-01T00:00:00Z)
//     is a time like any other.
//
// # Hazards
//
//   - ftrace times are seconds since boot: without the host's boot time
//     (NewFtrace's bootNs) events carry time since boot.
//   - Source names repeat across files and restarts (cpu0, a service
//     name); consumers that deduplicate by (source, SourceSeq), like the
//     daemon's file tailer, namespace them first.
//   - A JSON document (OTLP, Chrome) that is not valid JSON cannot be
//     resumed after the error, even when not strict.
//   - JSON lines events share memory: the strings and Attrs of events
//     of the common record layouts sit in slabs of about 32 KiB shared
//     with the events around them (see jsonl_fast.go), so keeping one
//     event keeps its slabs. Copy what must outlive the stream.
//   - The JSON lines parser is also a LazyParser: NextLazy leaves the
//     Name and Attrs of those events in the read buffer (LineFields),
//     where the next call overwrites them. Use or Fill them first.
package ingest
