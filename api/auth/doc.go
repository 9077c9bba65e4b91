// Package auth decides which caller may call which method of the clockd
// API, from the role its client certificate carries.
//
// # Model
//
// A role is a URI SAN of the client certificate with the scheme clockd:
//
//	clockd:peer      another cluster member
//	clockd:host      a hypervisor host's own tooling
//	clockd:admin     an operator
//	clockd:vm:<id>   one VM, or the VMM acting for it
//
// A certificate carries one or more clockd: URIs (a node's carries
// clockd:peer and clockd:host); URIs of other schemes are ignored. A
// Policy maps each full method name to the role kinds that may call it,
// and the interceptors enforce it on every unary call and every stream: a
// call is allowed when any of the caller's roles is. DefaultPolicy serves:
//
//	clockd.v1.TimeService/*                     every role
//	clockd.v1.AdminService/Status, Members      admin, host, peer
//	clockd.v1.AdminService/AddMember,
//	  RemoveMember, TransferLeader              admin
//	clockd.v1.MigrationService/Freeze, Resume,
//	  Release, List                             host, admin
//	clockd.v1.MigrationService/VMClock          host, admin, vm
//	clockd.v1.OrderingService/Append            host, admin
//	clockd.v1.OrderingService/Read, Subscribe,
//	  Offsets                                   admin, host, peer
//	clockd.v1.RunbookService/Submit, Cancel     admin
//	clockd.v1.RunbookService/Get, List, Wait    host, admin
//	grpc.health.v1.Health/*,
//	grpc.reflection.*.ServerReflection/*        every role
//
// The policy decides by role kind only; a handler that must tell one host
// or VM from another reads the roles with RolesFromContext.
//
// Usage:
//
//	cfg, err := auth.ServerTLS(caFile, certFile, keyFile)
//	opts := append(auth.Interceptors(false), grpc.Creds(credentials.NewTLS(cfg)))
//	s := grpc.NewServer(opts...)
//	// in a handler:
//	role, _ := auth.RoleFromContext(ctx)
//
// # Guarantees
//
//   - Without a client certificate verified against the server's client
//     CA the call fails with codes.Unauthenticated.
//   - With one none of whose roles the policy allows for the method, or
//     that carries no role or a malformed one, it fails with
//     codes.PermissionDenied and a message naming the roles and the
//     method.
//     A method missing from the policy is denied to every role.
//   - A handler reached through the interceptors finds the role that let
//     the caller in with RoleFromContext, and all its roles with
//     RolesFromContext.
//
// # Hazards
//
// HAZARD: insecure mode (Interceptors(true)) allows every method to every
// caller and gives each the role dev. It is for `clockd dev` on loopback
// only.
//
// HAZARD: the interceptors trust whatever the TLS layer verified. A server
// built without ServerTLS must itself verify client certificates against
// the cluster CA (tls.VerifyClientCertIfGiven or stronger); a TLS config
// that skips verification leaves every call Unauthenticated, never
// silently allowed.
//
// HAZARD: a policy is read concurrently by every call; do not change it
// after building interceptors from it.
package auth
