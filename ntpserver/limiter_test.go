package ntpserver

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestSourceTableBurstThenKiss(t *testing.T) {
	tab := newSourceTable(rate.Every(time.Hour), 3, 16, time.Second)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	at := func(d time.Duration) time.Time { return t2024.Add(d) }
	steps := []struct {
		from netip.Addr
		at   time.Duration
		want verdict
	}{
		{a, 0, admit},
		{a, 0, admit},
		{a, 0, admit},
		{a, 0, kissOff},
		{a, 0, drop},
		{b, 0, admit}, // another source keeps its own bucket
		{a, 999 * time.Millisecond, drop},
		{a, time.Second, kissOff},
		{a, time.Second, drop},
	}
	for i, st := range steps {
		if got := tab.check(st.from, at(st.at)); got != st.want {
			t.Fatalf("step %d (%v at %v): verdict %d, want %d", i, st.from, st.at, got, st.want)
		}
	}
}

func TestSourceTableRefills(t *testing.T) {
	tab := newSourceTable(2, 1, 16, time.Second)
	a := netip.MustParseAddr("192.0.2.1")
	for i, st := range []struct {
		at   time.Duration
		want verdict
	}{
		{0, admit},
		{0, kissOff},
		{250 * time.Millisecond, drop},
		{500 * time.Millisecond, admit}, // 2/s refills one token in 500 ms
		{500 * time.Millisecond, drop},
	} {
		if got := tab.check(a, t2024.Add(st.at)); got != st.want {
			t.Fatalf("step %d at %v: verdict %d, want %d", i, st.at, got, st.want)
		}
	}
}

func TestSourceTableUnlimited(t *testing.T) {
	tab := newSourceTable(rate.Inf, 1, 16, time.Second)
	for i := range 100 {
		if got := tab.check(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), t2024); got != admit {
			t.Fatalf("request %d: verdict %d, want admit", i, got)
		}
	}
	if tab.size() != 0 {
		t.Errorf("unlimited table tracks %d sources, want 0", tab.size())
	}
}

func TestSourceTableEvictsLeastRecent(t *testing.T) {
	tab := newSourceTable(rate.Every(time.Hour), 1, 2, time.Hour)
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	tab.check(a, t2024)
	tab.check(b, t2024)
	if got := tab.check(a, t2024); got != kissOff { // a is now the most recent
		t.Fatalf("a over its limit: verdict %d, want kissOff", got)
	}
	if got := tab.check(c, t2024); got != admit { // evicts b
		t.Fatalf("c: verdict %d, want admit", got)
	}
	if tab.size() != 2 {
		t.Fatalf("table holds %d sources, want 2", tab.size())
	}
	if got := tab.check(a, t2024); got != drop {
		t.Errorf("a kept its bucket: verdict %d, want drop", got)
	}
	if got := tab.check(b, t2024); got != admit {
		t.Errorf("b was forgotten and comes back with a full bucket: verdict %d, want admit", got)
	}
	if _, ok := tab.bySource[c]; ok {
		t.Errorf("c should have been evicted by b")
	}
}

func TestSourceKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::"},
		{"2001:db8:1:2:bbbb:cccc:dddd:eeee", "2001:db8:1:2::"},
		{"2001:db8:1:3::1", "2001:db8:1:3::"},
		{"fe80::1%eth0", "fe80::"},
	} {
		if got := sourceKey(netip.MustParseAddr(tc.in)); got != netip.MustParseAddr(tc.want) {
			t.Errorf("sourceKey(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
