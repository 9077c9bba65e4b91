// Package server serves the clockd.v1 API (api/clockdv1) over gRPC on top
// of two small backends the daemon implements: TimeBackend (the host's
// reference clock and the timestamp oracle) and AdminBackend (consensus
// state and membership).
//
// # Model
//
// The adapters validate every request, call the backend, and turn its
// answers into messages and its errors into status codes. They keep no
// state of their own.
//
// Usage:
//
//	opts := append(auth.Interceptors(devMode), server.DefaultLimits().ServerOptions()...)
//	opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConfig)))
//	s := grpc.NewServer(opts...)
//	hs := server.Register(s, timeBackend, adminBackend)
//	go s.Serve(lis)
//	...
//	hs.Shutdown() // health answers NOT_SERVING while the server drains
//	s.GracefulStop()
//
// # Guarantees
//
//   - Invalid requests fail with codes.InvalidArgument and a message that
//     names the field, before the backend is called: a Timestamp count of
//     0 or above clockdv1.MaxTimestampBatch, a member id of 0, an address
//     that is not host:port with a port of 1 to 65535, a WaitUntil target
//     more than MaxWaitAhead past the current reading.
//   - WaitUntil returns only a reading whose Earliest is after the target
//     and whose status is not INITIALIZING; it ends with
//     codes.DeadlineExceeded or codes.Canceled when the caller gives up.
//   - Backend errors keep the gRPC status they carry; context errors
//     become codes.Canceled or codes.DeadlineExceeded; ErrNotLeader and
//     the other sentinels map to the codes their comments give; anything
//     else is codes.Unknown. The message is the error's text.
//   - Limits bound request size, concurrent calls per connection and the
//     rate of calls per client.
//
// # Hazards
//
// HAZARD: WaitUntil reads TimeBackend.Now every 50µs to 100ms while it
// waits (every 10ms while the reading is unbounded). Now must be cheap.
// A bound that narrows is noticed at the next read, up to 100ms late.
//
// HAZARD: Watch sends as fast as the backend's channel delivers; a slow
// reader stalls the send, and the backend decides whether its channel
// blocks or drops. StatusChanges must stop sending once ctx ends.
//
// HAZARD: without the auth interceptors, every caller may change the
// membership. Register does not install them.
package server
