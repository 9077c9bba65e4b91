package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Scheme is the URI scheme of a role SAN.
const Scheme = "clockd"

// maxVMIDLen bounds a VM id, so a role fits comfortably in a log field.
const maxVMIDLen = 128

// ErrBadRole reports a malformed role, or a certificate without one.
var ErrBadRole = errors.New("auth: bad role")

// Kind is the kind of a role.
type Kind uint8

// The role kinds.
const (
	KindPeer Kind = iota + 1
	KindHost
	KindAdmin
	KindVM
	// KindDev is every caller's role in insecure (dev) mode; no
	// certificate carries it.
	KindDev
)

func (k Kind) String() string {
	switch k {
	case KindPeer:
		return "peer"
	case KindHost:
		return "host"
	case KindAdmin:
		return "admin"
	case KindVM:
		return "vm"
	case KindDev:
		return "dev"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Role is what a caller may do, as its certificate says.
type Role struct {
	Kind Kind
	// VM is the VM's id for KindVM, else empty.
	VM string
}

// String is the role as written after "clockd:": "admin", "vm:42".
func (r Role) String() string {
	if r.Kind == KindVM {
		return "vm:" + r.VM
	}
	return r.Kind.String()
}

// URI is the SAN that carries r, for issuing certificates.
func (r Role) URI() *url.URL {
	return &url.URL{Scheme: Scheme, Opaque: r.String()}
}

// ParseRole parses a clockd: URI such as clockd:admin or clockd:vm:42. A VM
// id is 1 to 128 characters of [A-Za-z0-9._-].
func ParseRole(u *url.URL) (Role, error) {
	if u.Scheme != Scheme {
		return Role{}, fmt.Errorf("%w: %q is not a %s: URI", ErrBadRole, u, Scheme)
	}
	if u.Opaque == "" || u.Host != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return Role{}, fmt.Errorf("%w: %q is not of the form %s:<role>", ErrBadRole, u, Scheme)
	}
	switch u.Opaque {
	case "peer":
		return Role{Kind: KindPeer}, nil
	case "host":
		return Role{Kind: KindHost}, nil
	case "admin":
		return Role{Kind: KindAdmin}, nil
	}
	if id, ok := strings.CutPrefix(u.Opaque, "vm:"); ok {
		if err := checkVMID(id); err != nil {
			return Role{}, fmt.Errorf("%w: %q: %v", ErrBadRole, u, err)
		}
		return Role{Kind: KindVM, VM: id}, nil
	}
	return Role{}, fmt.Errorf("%w: %q names no role (want %s:peer, host, admin or vm:<id>)", ErrBadRole, u, Scheme)
}

func checkVMID(id string) error {
	if id == "" || len(id) > maxVMIDLen {
		return fmt.Errorf("VM id must be 1 to %d characters, got %d", maxVMIDLen, len(id))
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("VM id holds %q; want [A-Za-z0-9._-]", c)
		}
	}
	return nil
}

// RolesFromCert are the roles of c's clockd: URI SANs, in certificate
// order. It fails when there is none, or when any is malformed: a
// certificate with a bad role was issued wrongly and earns no trust.
func RolesFromCert(c *x509.Certificate) ([]Role, error) {
	var roles []Role
	for _, u := range c.URIs {
		if u.Scheme != Scheme {
			continue
		}
		r, err := ParseRole(u)
		if err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	if len(roles) == 0 {
		return nil, fmt.Errorf("%w: the certificate carries no %s: URI", ErrBadRole, Scheme)
	}
	return roles, nil
}
