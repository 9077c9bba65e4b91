package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// The log part's events carry the names of a hypervisor host's debug
// traces: a dozen kinds of line, each with the numbers, addresses and
// identifiers that make every line differ. Names repeat as real ones do,
// by their words, not whole: the log's compression (ordering's
// KindEventBatchS2) gets from them what it would get from real traces,
// not the free ride a constant name would give it.

// logNameCount is how many distinct names there are. A 256 KiB command
// holds about 4,000 events, so few of its names repeat whole.
const logNameCount = 1 << 16

var logNameTemplates = []func(r *rand.Rand) string{
	func(r *rand.Rand) string {
		return fmt.Sprintf("kvm_exit: reason EPT_VIOLATION rip 0x%x info %x", 0xffffffff81000000|r.Uint64N(1<<24), r.IntN(1<<12))
	},
	func(r *rand.Rand) string {
		return fmt.Sprintf("virtio_net rxq %d: used %d descs, %d bytes, kick %t", r.IntN(8), r.IntN(256), 60+r.IntN(1454), r.IntN(2) == 0)
	},
	func(r *rand.Rand) string {
		return fmt.Sprintf("migration vm-%04x: sent %d pages, dirty %d MiB/s", r.IntN(1<<16), r.IntN(1<<20), r.IntN(4000))
	},
	func(r *rand.Rand) string {
		return fmt.Sprintf("vcpu%d: halt poll %dns grow, wakeup after %dus", r.IntN(64), r.IntN(200000), r.IntN(5000))
	},
	func(r *rand.Rand) string {
		return fmt.Sprintf("blk vda: write sector %d len %d lat %dus", r.Uint64N(1<<31), 512*(1+r.IntN(256)), r.IntN(20000))
	},
	func(r *rand.Rand) string {
		return fmt.Sprintf("irq %d: msi vector 0x%02x to vcpu%d, %d coalesced", 24+r.IntN(200), 0x20+r.IntN(0xd0), r.IntN(64), r.IntN(32))
	},
	func(r *rand.Rand) string {
		return fmt.Sprintf("tap%d: tx %d pkts %d bytes, drops %d", r.IntN(512), r.IntN(1024), r.IntN(1<<20), r.IntN(8))
	},
	func(r *rand.Rand) string {
		return fmt.Sprintf("mmio 0x%08x write %d bytes val 0x%x dev pci0000:%02x", 0xfe000000|r.Uint32N(1<<24), 1<<r.IntN(4), r.Uint32(), r.IntN(256))
	},
	func(r *rand.Rand) string {
		return fmt.Sprintf("balloon vm-%04x: target %d MiB, actual %d MiB", r.IntN(1<<16), 512*(1+r.IntN(64)), r.IntN(32768))
	},
	func(r *rand.Rand) string {
		return fmt.Sprintf("timer vcpu%d: deadline %d tsc offset %d", r.IntN(64), r.Uint64N(1<<44), int64(r.Uint64N(1<<40))-1<<39)
	},
	func(r *rand.Rand) string {
		return fmt.Sprintf("page fault gpa 0x%x hva 0x7f%010x err %x", r.Uint64N(1<<40), r.Uint64N(1<<40), r.IntN(32))
	},
	func(r *rand.Rand) string {
		return fmt.Sprintf("vhost-user %d: ring %d avail %d used %d", r.IntN(64), r.IntN(16), r.IntN(65536), r.IntN(65536))
	},
}

// logNames returns the names, the same in every run (a fixed seed).
var logNames = sync.OnceValue(func() []string {
	r := rand.New(rand.NewPCG(7, 42))
	names := make([]string, logNameCount)
	for i := range names {
		pid := 1000 + r.IntN(99000) // the VMM process the line came from
		names[i] = fmt.Sprintf("qemu-%d: %s", pid, logNameTemplates[r.IntN(len(logNameTemplates))](r))
	}
	return names
})

// logNameIndex is the index in logNames of the name of the event with
// sequence number seq. The names were drawn at random, so consecutive
// ones are unrelated; the client reads them in order, as the cache likes.
func logNameIndex(seq uint64) int { return int(seq % logNameCount) }

// logEventName is the name of the event with sequence number seq.
func logEventName(seq uint64) string { return logNames()[logNameIndex(seq)] }
