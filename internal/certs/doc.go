// Package certs makes a development CA and the certificates of a clockd
// cluster: one per node, and client certificates for hosts, VMs and the
// administrator. It backs `clockd certs init`.
//
// # The identities
//
// Every leaf is ECDSA P-256, signed by the one cluster CA. Its DNS SANs
// name the principal and its URI SANs carry the roles that the API's
// authorization reads:
//
//	node <id>    DNS node-<id>, localhost, extras   URI clockd:peer, clockd:host
//	             IP 127.0.0.1, ::1, extras          server and client auth
//	host <name>  DNS <name>                         URI clockd:host     client auth
//	vm <id>      (none)                             URI clockd:vm:<id>  client auth
//	admin        (none)                             URI clockd:admin    client auth
//
// The peer transport dials a node with ServerName node-<id> and accepts a
// stream only from a certificate that carries that name exactly, so a
// node's Name in the cluster configuration is NodeName(id).
//
// # Files
//
// Init writes PEM files into one directory: ca.pem and ca-key.pem, then
// <name>.pem and <name>-key.pem per leaf (node-1.pem, host-hv1-key.pem,
// vm-7.pem, admin.pem). Keys are PKCS #8 and mode 0600; certificates are
// mode 0644. Each file is created whole or not at all.
//
// # Guarantees
//
//   - Init checks the whole Spec and every target file before it writes
//     anything. Without Spec.Force it refuses to replace any file, naming
//     the first one that exists.
//   - A usable CA already in the directory (ca.pem and ca-key.pem that
//     match, valid now) is reused, so a node can be added to a running
//     cluster later. Force replaces leaves and an unusable CA, never a
//     usable one: to start a new CA, remove both CA files.
//   - A leaf never outlives its CA: its expiry is cut to the CA's.
//
// # Hazards
//
// HAZARD: ca-key.pem signs every identity of the cluster. It is a
// development convenience; keep it off the hosts, and use an
// organization's CA for production.
//
// HAZARD: if writing fails part way (a full disk), the files written so far
// stay. Rerun with Force.
//
// HAZARD: certificates start Backdate before Spec.Now, so a host whose wall
// clock is somewhat behind still accepts them. A host further behind than
// that rejects every peer's certificate as not yet valid.
package certs
