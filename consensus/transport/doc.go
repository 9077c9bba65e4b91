// Package transport carries consensus messages between cluster members over
// gRPC, with mutual TLS. It also moves state-machine snapshots to members
// that lag behind log truncation, and lets a new node ask to join.
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
// The service, clockd.peer.v1.Peer, has three methods: Stream carries
// messages, Snapshot carries one snapshot, and Join one join request.
//
// # Membership
//
// Config.Peers is the starting membership. AddPeer, RemovePeer and
// SetPeerAddr change it at any time, before or after Start; the transport
// follows, it does not decide: the driver calls them when the cluster's
// configuration changes. AddPeer starts dialing a higher-id peer at once
// and accepts a lower-id one from then on. RemovePeer stops the peer's
// dialer, ends its stream, drops its queue and waits for all of it, so
// once it returns the handler gets nothing more from that peer; later
// streams from it are refused as unknown and messages to it are dropped.
// A member removed and added again starts afresh.
//
// # Stream topology
//
// Each pair of members shares one long-lived bidirectional Stream. The
// member with the lower id
// dials the higher one and redials with capped, jittered exponential
// back-off (Config.BackoffMin..BackoffMax) whenever the stream ends; the
// acceptor sends its own messages to the dialer on that same stream and
// never dials. A newer stream from a peer replaces an older one for
// outbound traffic. While no stream to a peer is up, messages for it are
// dropped and counted, and messages still queued when a stream goes down
// are dropped too: they would be stale by the next stream.
//
// Each stream has one writer goroutine, the only sender on it. It drains
// the peer's queue (Config.QueueLen messages and Config.QueueBytes bytes;
// full means drop, so a stalled peer costs bounded memory) and packs as
// many messages as fit into each frame, so a burst costs few gRPC messages.
// Per stream, messages arrive in the order Send queued them. A frame is
// built in a buffer from a pool that gRPC returns it to once the frame is
// written (pool.go), and peer connections read and write through 256 KiB
// buffers.
//
// # Snapshots
//
// SendSnapshot(ctx, to, r, size) opens a client-streaming Snapshot call to
// peer to, on a gRPC connection of its own so that hundreds of megabytes
// do not queue ahead of consensus messages, and streams size bytes of r in
// chunks of Config.SnapshotChunkBytes. Either member may send to the
// other: the lower-id-dials rule is for message streams only. The size
// travels in the metadata key "clockd-snapshot-bytes"; the receiver
// refuses, before any data moves, a size over its Config.MaxSnapshotBytes
// (codes.ResourceExhausted) and fails a stream that carries more or fewer
// bytes than declared, or an empty chunk.
//
// The receiver hands Config.OnSnapshot an io.Reader over the chunks, read
// as they arrive, so HTTP/2 flow control paces the sender to the
// handler's speed. The reader returns io.EOF only after every declared
// byte; any other error means the transfer failed. OnSnapshot's verdict is
// the call's: nil accepts (a handler that accepts without reading to the
// end ends the transfer early, successfully), an error fails the call with
// codes.Aborted, or with the handler's own status if it returned one, and
// the sender's error carries its text. Both sides log at info when a
// transfer starts and ends and every 64 MiB in between. Canceling ctx,
// removing the peer or closing the sending transport aborts a transfer,
// and the receiver's reader fails.
//
// # Joining
//
// A node that knows one member's address calls the package function Join,
// a unary call carrying a JoinRequest (its id, address and TLS name), and
// gets that member's JoinResponse: accepted or not with a reason, the
// leader if known, and the members. The member's Config.OnJoin decides and
// answers; typically a follower answers "not the leader" with the
// leader's address, and the leader proposes a configuration change and
// answers once it is chosen. Calling AddPeer is the driver's job, on every
// member, when the change applies.
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
// The same codec carries the other methods. A Snapshot chunk is raw bytes,
// and the receiver answers with one empty message. Join's request and
// response use a hand-written encoding (see joinwire.go): a version byte,
// uvarints and length-prefixed strings, with every count and length
// checked before allocating.
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
// A Snapshot call is authenticated like a stream, by metadata id, known
// peer and certificate name, except that its caller may have either id.
//
// A Join caller is not a member yet, so no id is checked: its certificate
// must be signed by the CA and carry JoinRequest.Name as a DNS SAN (else
// codes.PermissionDenied). The caller verifies the member's certificate
// for the server name it was given.
//
// Insecure mode keeps the id checks but anyone who can reach the port can
// claim any configured id, and anyone can ask to join.
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
//
// HAZARD: RemovePeer waits for the goroutine that calls the handler for
// the removed peer. Calling it from the handler deadlocks; hand the change
// to another goroutine.
//
// HAZARD: a removed member that keeps running keeps dialing; each attempt
// is refused and logged at warn, at most every Config.BackoffMax.
//
// HAZARD: OnSnapshot and OnJoin run on gRPC's goroutines and Close waits
// for them. OnSnapshot must return once its reader fails; OnJoin must not
// wait long (for a proposal to be chosen, say) without a bound. An
// inbound snapshot from a removed peer stops only at its next chunk.
//
// HAZARD: a snapshot chunk must fit the receiver's gRPC limit, its
// MaxFrameBytes plus 1 KiB. Members with different MaxFrameBytes must keep
// SnapshotChunkBytes within the smallest, or transfers fail with
// codes.ResourceExhausted.
//
// HAZARD: with TLS, any holder of a certificate from the cluster CA can
// make OnJoin run, claiming any id and address with the name its
// certificate carries. The CA should sign only nodes meant to be members,
// and OnJoin must check the id against the membership it knows.
package transport
