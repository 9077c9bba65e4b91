// Package clockdv1 holds the clockd.v1 gRPC API: TimeService (reads of the
// reference clock, cluster-wide timestamps, commit wait, status changes),
// AdminService (a node's state and membership) and MigrationService (VM
// clocks across live migration).
//
// The *.pb.go files are generated from api/proto/clockd/v1 by
// scripts/proto.sh and committed; edit the .proto files and rerun it. The
// other files are written by hand: the conversions to and from
// vclock.Reading and the limits that server and client share.
//
// # Hazards
//
// HAZARD: a Reading from the wire is trusted as sent. VClock does not
// check that earliest <= time <= latest; a client that needs the
// invariant checks it.
package clockdv1
