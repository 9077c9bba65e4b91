package ntpserver

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/clockd/clockd/vclock"
)

var t2024 = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

func TestAnswer(t *testing.T) {
	req := header{Version: 4, Mode: modeClient, Poll: 7, XmitTime: 0x0123456789abcdef}
	for _, tc := range []struct {
		name        string
		stratum     uint8
		rx          vclock.Reading
		wantOutcome outcome
		wantStratum uint8
		wantLeap    uint8
		wantRefID   [4]byte
	}{
		{"synchronized", 2, reading(vclock.StatusSynchronized, t2024, time.Millisecond), outAnswer, 2, leapNone, DefaultRefID},
		{"synchronized at stratum 1", 1, reading(vclock.StatusSynchronized, t2024, time.Millisecond), outAnswer, 1, leapNone, DefaultRefID},
		{"holdover", 2, reading(vclock.StatusHoldover, t2024, time.Millisecond), outAnswer, 3, leapNone, DefaultRefID},
		{"holdover at stratum 15", 15, reading(vclock.StatusHoldover, t2024, time.Millisecond), outAnswer, 15, leapNone, DefaultRefID},
		{"initializing", 2, reading(vclock.StatusInitializing, t2024, -1), outUnsyncKoD, 0, leapAlarm, kissInit},
		{"unsynchronized", 2, reading(vclock.StatusUnsynchronized, t2024, time.Hour), outUnsyncKoD, 0, leapAlarm, kissInit},
		{"synchronized but unbounded", 2, reading(vclock.StatusSynchronized, t2024, -1), outUnsyncKoD, 0, leapAlarm, kissInit},
		{"unknown status", 2, reading(vclock.Status(9), t2024, time.Millisecond), outUnsyncKoD, 0, leapAlarm, kissInit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, o := answer(req, tc.rx, policy{stratum: tc.stratum, refID: DefaultRefID, precision: testPrecision})
			if o != tc.wantOutcome || got.Stratum != tc.wantStratum || got.Leap != tc.wantLeap || got.RefID != tc.wantRefID {
				t.Fatalf("outcome %d stratum %d leap %d refid %q; want %d, %d, %d, %q",
					o, got.Stratum, got.Leap, got.RefID, tc.wantOutcome, tc.wantStratum, tc.wantLeap, tc.wantRefID)
			}
			if got.Mode != modeServer || got.Version != 4 || got.Poll != 7 || got.OrigTime != req.XmitTime || got.RootDelay != 0 {
				t.Errorf("reply %+v does not echo the request", got)
			}
			if o == outAnswer {
				ts := toTimestamp(tc.rx.Time)
				if got.RefTime != ts || got.RecvTime != ts {
					t.Errorf("reference %#x, receive %#x; want both %#x", got.RefTime, got.RecvTime, ts)
				}
				if fromShort(got.RootDispersion) < tc.rx.Uncertainty() {
					t.Errorf("root dispersion %d ns < uncertainty %d ns", fromShort(got.RootDispersion), tc.rx.Uncertainty())
				}
				return
			}
			if got.RecvTime != req.XmitTime || got.XmitTime != req.XmitTime || got.RefTime != 0 || got.RootDispersion != 0 {
				t.Errorf("kiss %+v reveals clock state", got)
			}
		})
	}
}

// TestRespondStampsTransmitFromReceive checks that the transmit timestamp
// is the receive reading moved on by the local time the server took, that
// a negative interval leaves it at the receive timestamp, and that respond
// does not read the Source.
func TestRespondStampsTransmitFromReceive(t *testing.T) {
	for _, tc := range []struct {
		name       string
		turnaround time.Duration
		want       time.Duration // transmit - receive
	}{
		{"7us", 7 * time.Microsecond, 7 * time.Microsecond},
		{"zero", 0, 0},
		{"negative", -time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &scriptedSource{}
			src.set(reading(vclock.StatusSynchronized, t2024, time.Millisecond), int64(time.Second))
			s := newSocketless(t, Config{Source: src.read}, tc.turnaround)
			rx := src.read()
			var out [headerLen]byte
			resp := s.respond(request(4, modeClient, 6, 1, headerLen), netip.MustParseAddr("192.0.2.1"), t2024, rx, out[:])
			h, err := decodeHeader(resp)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fromTimestamp(h.RecvTime), t2024.UnixNano(); got != want {
				t.Errorf("receive %d, want %d", got, want)
			}
			if got, want := fromTimestamp(h.XmitTime), t2024.Add(tc.want).UnixNano(); got != want {
				t.Errorf("transmit %d, want %d", got, want)
			}
			if src.reads != 1 {
				t.Errorf("the Source was read %d times, want once (the receive reading)", src.reads)
			}
		})
	}
}

// FuzzRespond drives the whole decision path with arbitrary datagrams,
// statuses, uncertainties and sources, and checks the reflection bound:
// at most one reply, never longer than the datagram, and only to v3/v4
// client requests.
func FuzzRespond(f *testing.F) {
	f.Add(request(4, modeClient, 6, 1, headerLen), uint8(2), int64(1e6), uint8(0), uint8(1), int64(5000))
	f.Add(request(3, modeClient, 6, 1, headerLen+20), uint8(3), int64(1e12), uint8(1), uint8(2), int64(0))
	f.Add(request(4, modeClient, 6, 1, headerLen), uint8(1), int64(-1), uint8(2), uint8(30), int64(-1))
	f.Add(request(4, modeClient, 6, 1, 20), uint8(2), int64(0), uint8(3), uint8(1), int64(1))
	f.Add(request(4, 6, 6, 1, headerLen), uint8(2), int64(0), uint8(3), uint8(1), int64(1))

	f.Fuzz(func(t *testing.T, data []byte, status uint8, uncNs int64, fromByte uint8, repeat uint8, turnaroundNs int64) {
		src := &scriptedSource{}
		unc := time.Duration(uncNs)
		if uncNs < -1 {
			unc = -unc
		}
		src.set(reading(vclock.Status(status%6), t2024, unc), int64(fromByte))
		s := newSocketless(t, Config{Source: src.read, RateLimit: rate.Every(time.Hour), Burst: 2, MaxSources: 2},
			time.Duration(turnaroundNs))
		_, reqErr := parseRequest(data)
		from := netip.AddrFrom4([4]byte{192, 0, 2, fromByte % 3})
		var out [headerLen]byte
		for i := range int(repeat%8) + 1 {
			resp := s.respond(data, from, t2024.Add(time.Duration(i)*time.Second/2), src.read(), out[:])
			if resp == nil {
				continue
			}
			if reqErr != nil {
				t.Fatalf("reply to a rejected datagram (%v)", reqErr)
			}
			if len(resp) > len(data) {
				t.Fatalf("reply of %d bytes to a datagram of %d", len(resp), len(data))
			}
			h, err := decodeHeader(resp)
			if err != nil {
				t.Fatal(err)
			}
			if h.Stratum != 0 && h.RecvTime > h.XmitTime {
				t.Fatalf("receive %#x after transmit %#x", h.RecvTime, h.XmitTime)
			}
		}
		st := s.Stats()
		if n := st.Answered + st.UnsynchronizedKoD + st.RateLimited + st.Malformed; n != uint64(repeat%8)+1 {
			t.Fatalf("stats %+v count %d datagrams, want %d", st, n, repeat%8+1)
		}
	})
}
