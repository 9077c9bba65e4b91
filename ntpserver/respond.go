package ntpserver

import (
	"github.com/clockd/clockd/vclock"
)

// Kiss codes (RFC 5905 §7.4) carried in the Reference ID of a stratum-0
// answer.
var (
	// kissRate asks the client to poll less often.
	kissRate = [4]byte{'R', 'A', 'T', 'E'}
	// kissInit says the server has no usable time yet (doc.go explains the
	// choice).
	kissInit = [4]byte{'I', 'N', 'I', 'T'}
)

// outcome is what the server does with one datagram.
type outcome uint8

const (
	// outMalformed: not an NTPv3/v4 client request; nothing is sent.
	outMalformed outcome = iota
	// outRateDrop: over the source's limit; nothing is sent.
	outRateDrop
	// outRateKoD: over the source's limit; a RATE kiss is sent.
	outRateKoD
	// outUnsyncKoD: the clock is not usable; an INIT kiss is sent.
	outUnsyncKoD
	// outAnswer: a normal server answer, still to be given its transmit
	// timestamp.
	outAnswer
)

// sends reports whether the outcome puts a packet on the wire.
func (o outcome) sends() bool { return o >= outRateKoD }

// policy is what an answer announces besides the readings; fixed by New.
type policy struct {
	stratum   uint8 // announced while SYNCHRONIZED; 1..maxStratum
	refID     [4]byte
	precision int8
}

// answer is the server's reply to req given rx, the reading taken when req
// was read off the socket. For outAnswer the transmit timestamp is left
// for the caller to set as late as it can.
func answer(req header, rx vclock.Reading, p policy) (header, outcome) {
	stratum, ok := announcedStratum(rx, p.stratum)
	if !ok {
		return kissOfDeath(req, kissInit, p.precision), outUnsyncKoD
	}
	ts := toTimestamp(rx.Time)
	return header{
		Leap:           leapNone,
		Version:        req.Version,
		Mode:           modeServer,
		Stratum:        stratum,
		Poll:           req.Poll,
		Precision:      p.precision,
		RootDelay:      0,
		RootDispersion: toShort(rx.Uncertainty()),
		RefID:          p.refID,
		RefTime:        ts,
		OrigTime:       req.XmitTime,
		RecvTime:       ts,
	}, outAnswer
}

// announcedStratum is the stratum to answer with, or false when the reading
// must not be served: the clock is initializing or unsynchronized, or the
// reading has no bound. HOLDOVER answers one stratum further from the
// reference than SYNCHRONIZED, never past maxStratum.
func announcedStratum(r vclock.Reading, synced uint8) (uint8, bool) {
	if !r.Bounded() {
		return 0, false
	}
	switch r.Status {
	case vclock.StatusSynchronized:
		return synced, true
	case vclock.StatusHoldover:
		return min(synced+1, maxStratum), true
	}
	return 0, false
}

// kissOfDeath is a stratum-0 answer carrying code. It reveals nothing of
// the server's clock: the receive and transmit timestamps echo the
// request's transmit timestamp rather than being zero, because some
// clients discard a reply with a zero transmit timestamp before they look
// at its kiss code.
func kissOfDeath(req header, code [4]byte, precision int8) header {
	return header{
		Leap:      leapAlarm,
		Version:   req.Version,
		Mode:      modeServer,
		Stratum:   0,
		Poll:      req.Poll,
		Precision: precision,
		RefID:     code,
		OrigTime:  req.XmitTime,
		RecvTime:  req.XmitTime,
		XmitTime:  req.XmitTime,
	}
}
