// Package transport carries consensus messages between cluster members over
// gRPC, with mutual TLS.
//
// # Model
//
// The consensus core emits messages in Ready and consumes them with Step;
// this package is the shell that moves them. Delivery is best effort:
// messages may be lost, and the core's retransmissions (heartbeats, accept
// retries) make up for it. Nothing here retries, acknowledges or persists.
//
// Usage:
//
//	t, err := transport.New(cfg, func(m consensus.Message) { inbox <- m })
//	if err := t.Start(); err != nil { ... }
//	defer t.Close()
//	for rd := range readies {
//		// persist first, then:
//		t.Send(rd.Messages)
//	}
//
// # Stream topology
//
// Each pair of members shares one long-lived bidirectional gRPC stream,
// service clockd.peer.v1.Peer, method Stream. The member with the lower id
// dials the higher one and redials with capped, jittered exponential
// back-off (Config.BackoffMin..BackoffMax) whenever the stream ends; the
// acceptor sends its own messages to the dialer on that same stream and
// never dials. A newer stream from a peer replaces an older one for
// outbound traffic. While no stream to a peer is up, messages for it are
// dropped and counted, and messages still queued when a stream goes down
// are dropped too: they would be stale by the next stream.
//
// Each stream has one writer goroutine, the only sender on it. It drains
// the peer's queue (Config.QueueLen messages; full means drop) and packs as
// many messages as fit into each frame, so a burst costs few gRPC messages.
// Per stream, messages arrive in the order Send queued them.
//
// # Frame layout
//
// A frame is the payload of one gRPC message, moved by a pass-through codec
// (content-subtype "clockd-frame"), not protobuf:
//
//	uvarint(count) { uvarint(len) consensus.AppendMessage bytes }*count
//
// count >= 1 and a frame is at most Config.MaxFrameBytes. gRPC's own message
// limit is MaxFrameBytes plus 1 KiB, so a slightly oversized frame is
// rejected by the transport with a reason while a grossly oversized one
// ends the stream (codes.ResourceExhausted). Send drops, with a log line, a
// message that cannot fit in a frame by itself.
//
// # Security
//
// With TLS (the default; Insecure must be asked for):
//   - TLS 1.3 only, with certificates loaded from files at New. Both sides
//     present a certificate signed by Config.TLS.CAFile, and the acceptor
//     requires and verifies the dialer's.
//   - The dialer sends its node id in the metadata key "clockd-node-id".
//     The acceptor refuses the stream with codes.Unauthenticated when the
//     id is missing or malformed, and with codes.PermissionDenied when the
//     id is not a configured peer, is not lower than its own, or the client
//     certificate lacks that peer's Peer.Name as a DNS SAN (exact match,
//     case-insensitive, no wildcards).
//   - The dialer verifies the acceptor's certificate for ServerName =
//     Peer.Name, and checks that the acceptor's response header names the
//     node it meant to reach.
//
// Insecure mode keeps the id checks but anyone who can reach the port can
// claim any configured id.
//
// Every inbound message is decoded and checked: it must be well formed,
// From must be the authenticated peer and To this node. A failing frame or
// message is rejected, logged at warn with the reason and counted in
// Stats.Rejected; the stream stays up, and the rest of the frame still
// counts. A frame whose layout is broken is rejected whole.
//
// # Hazards
//
// HAZARD: the handler runs on the receiving goroutine of the peer's
// stream. It is called concurrently for different peers and must not block
// for long: while it runs, that stream stops reading, HTTP/2 flow control
// stalls the peer's writer, and the peer's queue fills and drops.
//
// HAZARD: certificates are read once, at New. Rotating them means a new
// Transport.
//
// HAZARD: a peer with valid credentials is trusted to be that peer. It can
// make this node log a warning per rejected message and, by the codec's
// design, make it allocate up to about 16 times a frame's size while
// decoding it (one Command per two input bytes). Keep MaxFrameBytes modest.
//
// HAZARD: SetPeerAddr does not move a stream that is already up; it takes
// effect on the next dial. Keep-alive pings (10s, 5s timeout) tear down
// half-open connections, so a dead stream lasts at most about 15s.
package transport
