// Package client is the Go client of the clockd API (api/clockdv1): reads
// of a host's reference clock, cluster-wide timestamps, commit wait,
// status changes, and the admin calls.
//
// Usage:
//
//	c, err := client.Dial(ctx, "host1:7443", client.Options{
//		CAFile: "ca.pem", CertFile: "vm.pem", KeyFile: "vm-key.pem",
//	})
//	if err != nil { ... }
//	defer c.Close()
//	r, err := c.Now(ctx)          // r.Earliest <= true time <= r.Latest
//	ts, err := c.Timestamp(ctx)   // unique across the cluster
//	_, err = c.WaitUntil(ctx, t)  // t has passed everywhere
//
// Errors from calls are gRPC status errors as the server sent them;
// status.Code tells them apart. The failures of Dial and of Options are
// plain errors.
//
// # Batching
//
// Timestamp coalesces concurrent callers. While one Timestamp request is
// in flight, later callers queue; when it returns, the next request asks
// for all of them (up to clockdv1.MaxTimestampBatch) and each caller gets
// a distinct value of the consecutive range. Under load this costs each
// caller at most about two round trips, and the server one request per
// round trip. Timestamps asks for a range in a request of its own.
//
// # Guarantees
//
//   - The timestamps of one batch are consecutive and each goes to one
//     caller only.
//   - A batched request lasts until the latest deadline of its callers,
//     and is canceled once every one of them has given up.
//
// # Hazards
//
// HAZARD: a caller that gives up after its batch was sent leaves its
// timestamp unused; the values the others got are still unique, but the
// range they came from has a hole.
//
// HAZARD: Dial waits until the connection is up. With a ctx that never
// ends and a server that never answers, it never returns.
package client
