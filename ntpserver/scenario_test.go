package ntpserver

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"golang.org/x/time/rate"

	"github.com/clockd/clockd/vclock"
)

// TestScenarios runs the scripts in testdata/*.txt. Each drives a Server's
// decision path (no socket; the same code Serve runs per datagram) with a
// scripted reference clock and a scripted local time, and prints every
// reply field by field.
//
// Commands:
//
//	server [stratum=N] [refid=XXXX] [rate=R|inf] [burst=B] [max-sources=N] [turnaround=D]
//	    a fresh server; rate is requests/s; precision is fixed at -20;
//	    turnaround is the local time from a receive reading to its
//	    transmit timestamp (default 0)
//	reading status=S [time=RFC3339] [unc=D|unbounded] [step=D]
//	    what the Source returns from now on; every read (one per request)
//	    advances it by step
//	request from=IP [at=D] [version=V] [mode=M] [poll=P] [len=N]
//	    one datagram at local time at (from a fixed origin); prints the
//	    reply in full, or "no reply"
//	burst from=IP n=N [at=D]
//	    N version-4 requests at the same local time, one line each
//	stats
//	    the counters and the number of sources tracked
//
// Timestamps equal to the request's transmit timestamp print as req-xmit.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		sc := &scenario{src: &scriptedSource{}}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return sc.run(t, d)
		})
	})
}

// scenarioXmit is the transmit timestamp of every scripted request.
const scenarioXmit = 0x0123456789abcdef

type scenario struct {
	srv *Server
	src *scriptedSource
}

func (sc *scenario) run(t *testing.T, d *datadriven.TestData) string {
	args := map[string]string{}
	for _, a := range d.CmdArgs {
		args[a.Key] = strings.Join(a.Vals, ",")
	}
	switch d.Cmd {
	case "server":
		sc.srv = newSocketless(t, scenarioConfig(t, args, sc.src.read), durationArg(t, args, "turnaround", 0))
		return ""
	case "reading":
		sc.src.set(scenarioReading(t, args))
		return ""
	case "request":
		pkt := request(uint8(intArg(t, args, "version", 4)), uint8(intArg(t, args, "mode", modeClient)),
			int8(intArg(t, args, "poll", 6)), scenarioXmit, intArg(t, args, "len", headerLen))
		resp := sc.send(t, args, pkt)
		if resp == nil {
			return "no reply\n"
		}
		return formatReply(t, resp)
	case "burst":
		var out strings.Builder
		for i := range intArg(t, args, "n", 1) {
			resp := sc.send(t, args, request(4, modeClient, 6, scenarioXmit, headerLen))
			fmt.Fprintf(&out, "%d: %s\n", i+1, briefReply(t, resp))
		}
		return out.String()
	case "stats":
		st := sc.srv.Stats()
		return fmt.Sprintf("answered=%d unsynchronized-kod=%d rate-limited=%d rate-kod=%d malformed=%d sources=%d\n",
			st.Answered, st.UnsynchronizedKoD, st.RateLimited, st.RateKoD, st.Malformed, sc.srv.table.size())
	}
	t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	return ""
}

// send runs one datagram through the server the way Serve does: read the
// Source, then decide.
func (sc *scenario) send(t *testing.T, args map[string]string, pkt []byte) []byte {
	from, err := netip.ParseAddr(args["from"])
	if err != nil {
		t.Fatalf("from: %v", err)
	}
	now := t2024.Add(durationArg(t, args, "at", 0))
	var out [headerLen]byte
	resp := sc.srv.respond(pkt, from, now, sc.src.read(), out[:])
	if len(resp) > len(pkt) {
		t.Fatalf("reply of %d bytes to a request of %d", len(resp), len(pkt))
	}
	return resp
}

func scenarioConfig(t *testing.T, args map[string]string, src func() vclock.Reading) Config {
	cfg := Config{
		Source:     src,
		Stratum:    uint8(intArg(t, args, "stratum", 0)),
		Burst:      intArg(t, args, "burst", 0),
		MaxSources: intArg(t, args, "max-sources", 0),
	}
	copy(cfg.RefID[:], args["refid"])
	switch r := args["rate"]; r {
	case "":
	case "inf":
		cfg.RateLimit = rate.Inf
	default:
		v, err := strconv.ParseFloat(r, 64)
		if err != nil {
			t.Fatalf("rate: %v", err)
		}
		cfg.RateLimit = rate.Limit(v)
	}
	return cfg
}

func scenarioReading(t *testing.T, args map[string]string) (vclock.Reading, int64) {
	status := map[string]vclock.Status{
		"INITIALIZING":   vclock.StatusInitializing,
		"SYNCHRONIZED":   vclock.StatusSynchronized,
		"HOLDOVER":       vclock.StatusHoldover,
		"UNSYNCHRONIZED": vclock.StatusUnsynchronized,
	}[args["status"]]
	if status == 0 {
		t.Fatalf("unknown status %q", args["status"])
	}
	at := t2024
	if s, ok := args["time"]; ok {
		var err error
		if at, err = time.Parse(time.RFC3339Nano, s); err != nil {
			t.Fatalf("time: %v", err)
		}
	}
	unc := time.Duration(-1)
	if args["unc"] != "unbounded" {
		unc = durationArg(t, args, "unc", 0)
	}
	return reading(status, at, unc), int64(durationArg(t, args, "step", 0))
}

func formatReply(t *testing.T, resp []byte) string {
	h, err := decodeHeader(resp)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("reply len=%d leap=%d version=%d mode=%d stratum=%d poll=%d precision=%d refid=%q\n"+
		"root-delay=%d/65536s root-disp=%d/65536s\n"+
		"ref=%s org=%s\nrec=%s xmt=%s\n",
		len(resp), h.Leap, h.Version, h.Mode, h.Stratum, h.Poll, h.Precision, h.RefID[:],
		h.RootDelay, h.RootDispersion,
		formatTimestamp(h.RefTime), formatTimestamp(h.OrigTime),
		formatTimestamp(h.RecvTime), formatTimestamp(h.XmitTime))
}

func briefReply(t *testing.T, resp []byte) string {
	if resp == nil {
		return "no reply"
	}
	h, err := decodeHeader(resp)
	if err != nil {
		t.Fatal(err)
	}
	if h.Stratum == 0 {
		return fmt.Sprintf("kiss %s", h.RefID[:])
	}
	return fmt.Sprintf("answer stratum=%d", h.Stratum)
}

func formatTimestamp(ts uint64) string {
	switch ts {
	case 0:
		return "0"
	case scenarioXmit:
		return "req-xmit"
	}
	return time.Unix(0, fromTimestamp(ts)).UTC().Format(time.RFC3339Nano)
}

func intArg(t *testing.T, args map[string]string, key string, def int) int {
	s, ok := args[key]
	if !ok {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}

func durationArg(t *testing.T, args map[string]string, key string, def time.Duration) time.Duration {
	s, ok := args[key]
	if !ok {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}
