// Command bench-tracecat measures tracecat merge against GNU sort -m, the
// fastest way to merge sorted text files, on the machine it runs on and in
// one run.
//
// # Method
//
// It generates --files JSON-lines files (default 8), one per host, of
// --events events each (default 500,000), about 150 bytes a line:
//
//	{"ts":1700000000123456789,"host":"hv3","level":"info","component":"vmm","msg":"...","vm":"vm-4242","req":"9f0c1e2a3b","seq":17,"dur_us":4242}
//
// ts is the host's local time in ns since the epoch. It is always 19
// digits (until the year 2286) and every line starts with {"ts":, so
// comparing lines byte by byte, as LC_ALL=C sort does, compares their
// times first: sort -m's order is time order, and the check below
// verifies it. Each host's clock drifts linearly by up to 200 ms over the
// run, and an offsets file samples every host's offset each second, as
// clockd offsets export would; tracecat applies it, so it interpolates
// an offset for every event. sort merges the uncorrected lines.
//
// Each tool first runs once into a file, and the output is checked:
// every event present, and times never decreasing (for tracecat its
// corrected ts, with no late or inconsistent event). Then, interleaved,
// --repeat times each (default 3), timed:
//
//	tracecat merge --output jsonl --offsets offsets.jsonl -o /dev/null hv*.jsonl
//	LC_ALL=C sort -m -o /dev/null hv*.jsonl
//
// The timed runs write to /dev/null: the outputs differ in size (tracecat
// adds the corrected and local times, the source and sequence), and a
// disk would set the pace of both. The table gives each tool's best run:
// input bytes and events, seconds, MB/s (10^6 bytes) and events/s, and
// the throughput ratio tracecat/sort (sort's seconds over tracecat's);
// the target is at least 1.
//
// --part all runs the merge part, then syncs the disk (sync(2)), so that
// the log part's fsyncs do not wait behind the merge part's writes and
// the release of its deleted files, then the log part.
//
// --part log measures the ordered event log: a 3-node loopback cluster of
// real clockd processes receiving 100-byte events at its leader, in two
// phases. At saturation, 8 clients (--log-clients) each append
// 2,000-event batches (--log-batch), one Append at a time: its events/s
// is the throughput target's. Paced, 500,000 events/s are offered open
// loop, a 1,000-event Append (--log-paced-batch) due every 2 ms, with
// each Append's latency counted from when it was due: its p99 is the
// latency target's. Each phase prints committed events/s (counted from
// the Append answers and, independently, from the leader's GSN),
// append→commit p50/p99, CPU per event, the bytes each node had written
// to the disk per event, and each node's RSS at the start and end of the
// window and at its peak, sampled every 100 ms (logpart.go); at the end,
// the leader's event store bytes per event. The clients run in this
// process and share the machine with the nodes, so each keeps its request
// in the wire encoding and writes only the sequence numbers and times for
// each Append (wire.go). The events' names are hypervisor trace lines
// drawn once from a dozen templates (names.go), so that compressed
// batches (--log-compression, the nodes' event_compression, default s2)
// shrink as real traces would.
package main
