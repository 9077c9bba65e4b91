// Package ntpserver answers NTPv3 and NTPv4 client requests (RFC 5905,
// mode 3) over UDP from clockd's reference clock, so that ordinary NTP
// clients (chrony, ntpd, systemd-timesyncd, SNTP libraries) can follow it.
//
// # Model
//
// The reference clock is a function, Config.Source, returning a
// vclock.Reading: a time in ns since the Unix epoch, an interval that holds
// the true time, and a status. The server is stateless towards clients
// apart from one token bucket per source. One goroutine, the one running
// Serve, reads a datagram, reads the Source at once (the receive
// timestamp), decides, dates the reply just before sending (the transmit
// timestamp: the receive reading moved on by the local monotonic time
// since) and writes it; the Source is read once per datagram:
//
//	srv, err := ntpserver.New(ntpserver.Config{Listen: ":123", Source: clk.Read, Logger: log})
//	if err != nil { ... }
//	err = srv.Serve(ctx) // until ctx ends
//
// The decision is a pure function of the datagram, its source address, the
// local time (for the limiter only) and the receive reading; tests drive
// it without a socket, with a scripted interval for the transmit
// timestamp.
//
// # Answers
//
// A normal answer is a 48-byte mode-4 header: the request's version and
// poll; leap indicator 0; root delay 0; root dispersion the reading's
// Uncertainty in NTP short format, rounded up and saturated at
// 0xffffffff (about 65536 s); Reference ID Config.RefID; reference and
// receive timestamps the receive reading's Time; origin timestamp the
// request's transmit timestamp; transmit timestamp the receive reading's
// Time plus the local monotonic time elapsed since it was taken, measured
// just before the reply is encoded. The precision field is measured once
// in New as the cheapest of a few Source reads, rounded up to a power of
// two seconds, within [-30, 0].
//
// What is announced follows the reading's status:
//
//	SYNCHRONIZED    stratum Config.Stratum (default 2), leap 0
//	HOLDOVER        stratum Config.Stratum+1 (at most 15), leap 0
//	INITIALIZING    kiss-o'-death INIT, stratum 0, leap 3
//	UNSYNCHRONIZED  kiss-o'-death INIT, stratum 0, leap 3
//
// A reading without a bound is served as INITIALIZING whatever its status.
//
// HOLDOVER is still served as synchronized time: its bound holds and grows
// by the drift allowance, and the root dispersion carries that growth to
// the client, which can weigh or reject it (clients discard sources whose
// root distance exceeds 16 s). The extra stratum makes a client that also
// follows a SYNCHRONIZED clockd host prefer that one. A leap indicator of
// 3 would make clients drop the server altogether while its time is still
// bounded, so it is kept for the kisses.
//
// # The INIT kiss
//
// While the clock has no usable time the server answers with a
// kiss-o'-death whose code is INIT, RFC 5905's code for "the association
// has not yet synchronized for the first time". The other candidates say
// the wrong thing: DENY and RSTR tell the client to stop using the server
// for good, RATE to slow down, STEP that a time step just happened. With
// INIT the client keeps polling at its own pace and picks the server up
// once it is synchronized again; clients that do not know INIT still see
// stratum 0 and leap 3, and discard the packet. The same code serves
// UNSYNCHRONIZED: to a client, a clock whose bound grew too wide is a
// clock that must synchronize again.
//
// A kiss carries no clock state: its receive and transmit timestamps both
// echo the request's transmit timestamp, root delay and dispersion are 0.
//
// # The read loop
//
// On Linux, Serve takes the socket out of Go's hands: it duplicates the
// *net.UDPConn's descriptor and closes the conn, which removes the socket
// from Go's netpoller (its epoll would otherwise wake a thread of its own
// for every datagram) while the duplicate keeps it bound. It then locks
// its goroutine to its OS thread and serves the socket with system calls
// of its own:
//
//	for not closing:
//	    recvfrom(MSG_DONTWAIT) the next datagram and its source address
//	    EAGAIN: poll(2) the socket and the eventfd, no timeout; loop
//	    read the Source, decide, sendto(MSG_DONTWAIT) the source address
//
// Between datagrams the thread sleeps in poll(2) and the kernel wakes it
// alone: an arrival costs one thread wake-up, not a netpoller wake-up and
// a goroutine switch, and the reply leaves from the same thread. The
// source address goes back to sendto as the kernel wrote it, in a buffer
// reused for every datagram, so answering a known source allocates
// nothing. Should the send buffer be full, the loop polls for room, as the
// *net.UDPConn's WriteTo would wait for it.
//
// Close sets a flag the loop reads before every datagram and makes an
// eventfd readable, which ends the poll; it returns once the loop has
// closed its descriptor. Close before the loop has taken the socket just
// closes the *net.UDPConn, and the loop never starts. The thread is
// unlocked and goes back to the runtime when Serve returns.
//
// Elsewhere, Serve reads and writes through the *net.UDPConn, parked in the
// netpoller between datagrams. Both loops hand every datagram to the same
// decision code and answer alike.
//
// # Rate limiting
//
// Each source (an IPv4 address, or the /64 of an IPv6 address, since one
// host commonly owns a whole /64) has a token bucket of Config.RateLimit
// requests/s and Config.Burst tokens. A request over the limit is
// answered with a RATE kiss if its source got no RATE kiss in the last
// second, and is dropped otherwise. The table keeps at most
// Config.MaxSources buckets and forgets the least recently seen source
// when full.
//
// # Guarantees
//
//   - No reply is larger than the request that caused it, and no request
//     causes more than one reply: a reply is always the 48-byte header, and
//     requests shorter than 48 bytes are dropped. A request with extension
//     fields or a MAC gets the plain header, without them. So the server
//     can reflect at most the bytes it is sent, and under the rate limit
//     far fewer.
//   - Over the limit, one source receives at most one RATE kiss per
//     second.
//   - Normal answers are served only from bounded SYNCHRONIZED or HOLDOVER
//     readings, and the root dispersion is never smaller than the
//     reading's uncertainty.
//   - Receive timestamp <= transmit timestamp in every normal answer.
//   - Datagrams that are not NTPv3/v4 client requests (shorter than 48
//     bytes, version other than 3 or 4, mode other than 3, including mode
//     6 and 7 control queries) get no reply. Since server-mode packets
//     are never answered, a spoofed request cannot set two servers
//     answering each other.
//
// # Hazards
//
//   - HAZARD: the receive timestamp is taken in user space after the read
//     returns, not by the kernel. Scheduling delay between the packet's
//     arrival and the read shows up as asymmetry and biases the client's
//     offset by up to half of it. Keep the Serve goroutine unstarved: on
//     Linux its thread must also get a P back from the Go scheduler when
//     poll(2) returns, which waits while every P is busy.
//   - HAZARD: the transmit timestamp advances the receive reading at the
//     rate of the local monotonic clock, not the Source's. The two differ
//     by the Source's rate correction (for clockd, at most some hundreds of
//     ppm), so the transmit timestamp is off by that rate times the
//     server's turnaround: under 10 ns for 1000 ppm over 10 µs.
//   - HAZARD: on Linux the Serve goroutine keeps an OS thread to itself
//     while it runs, blocked in poll(2) when idle.
//   - HAZARD: the leap indicator never announces a leap second; clockd's
//     readings carry no leap information.
//   - HAZARD: with more active sources than MaxSources, evicted sources
//     come back with a full bucket, so a flood of distinct (possibly
//     spoofed) addresses weakens the limit on each. The reflection bound
//     above still holds.
//   - HAZARD: sources are told apart by address only; with spoofed source
//     addresses a third party can spend a victim's tokens and have it
//     sent RATE kisses, as with any unauthenticated NTP server.
//   - HAZARD: at stratum 2 and above clients read the Reference ID as the
//     upstream server's IPv4 address for loop detection; the default
//     "CLKD" reads as 67.76.75.68.
//   - HAZARD: requests with a MAC get an answer without one; clients that
//     authenticate with symmetric keys will reject it. NTS and symmetric
//     keys are not supported.
//   - HAZARD: NTP timestamps wrap every 2³² s (next in 2036); the server
//     writes era-relative timestamps and relies on clients to resolve the
//     era, as RFC 5905 prescribes.
package ntpserver
