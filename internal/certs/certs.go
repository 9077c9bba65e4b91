package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The roles a certificate carries as URI SANs.
const (
	URIPeer  = "clockd:peer"
	URIHost  = "clockd:host"
	URIAdmin = "clockd:admin"
	// URIVMPrefix is followed by the VM's id: clockd:vm:7.
	URIVMPrefix = "clockd:vm:"
)

// Defaults of Spec and the backdating of every certificate.
const (
	DefaultLeafValidity = 365 * 24 * time.Hour
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	// Backdate is how far before Spec.Now certificates become valid, so
	// that hosts whose wall clocks lag a little accept them.
	Backdate = time.Hour
)

// The file names of the CA in the directory.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// Errors returned by Init, wrapped with the file or field at fault.
var (
	ErrInvalidSpec = errors.New("certs: invalid spec")
	ErrExists      = errors.New("certs: file exists")
	ErrUnusableCA  = errors.New("certs: unusable CA")
)

// Spec says which certificates Init issues.
type Spec struct {
	// Nodes get server and client certificates, one each. IDs are
	// non-zero and distinct.
	Nodes []Node
	// Hosts are host names, each a DNS name, distinct.
	Hosts []string
	// VMs are VM ids: 1 to 64 of the characters A-Z a-z 0-9 . _ -, not
	// starting with a dot, distinct.
	VMs []string
	// Admin issues admin.pem.
	Admin bool
	// Force replaces existing leaf files and an unusable CA.
	Force bool
	// LeafValidity is how long each leaf is valid after Now. Zero means
	// DefaultLeafValidity.
	LeafValidity time.Duration
	// CAValidity is how long a new CA is valid after Now; a reused CA
	// keeps its own. Zero means DefaultCAValidity.
	CAValidity time.Duration
	// Now is the issuing time. Zero means the wall clock.
	Now time.Time
}

// Node is one member of the cluster.
type Node struct {
	ID uint64
	// DNSNames and IPs are added to the defaults: node-<id> and localhost,
	// 127.0.0.1 and ::1.
	DNSNames []string
	IPs      []netip.Addr
}

// NodeName is the DNS SAN that identifies node id to its peers, and the
// stem of its file names.
func NodeName(id uint64) string { return "node-" + strconv.FormatUint(id, 10) }

// Files reports what Init wrote, in order.
type Files struct {
	Dir   string `json:"dir"`
	CA    string `json:"ca"`
	CAKey string `json:"ca_key"`
	// CAReused is true when the CA was already in Dir and was not written.
	CAReused   bool      `json:"ca_reused"`
	CANotAfter time.Time `json:"ca_not_after"`
	Leaves     []Leaf    `json:"leaves"`
}

// Leaf is one issued certificate.
type Leaf struct {
	// Name is the file stem and the certificate's common name: node-1,
	// host-hv1, vm-7, admin.
	Name     string       `json:"name"`
	Cert     string       `json:"cert"`
	Key      string       `json:"key"`
	DNSNames []string     `json:"dns_names,omitempty"`
	IPs      []netip.Addr `json:"ips,omitempty"`
	URIs     []string     `json:"uris"`
	// Server is true when the certificate may serve TLS, not only be a
	// client.
	Server   bool      `json:"server"`
	NotAfter time.Time `json:"not_after"`
}

// authority is a CA able to sign.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// Init issues the certificates spec asks for into dir, creating dir (mode
// 0700) if needed. See the package documentation for the rules on
// existing files.
func Init(dir string, spec Spec) (Files, error) {
	if dir == "" {
		return Files{}, fmt.Errorf("%w: empty directory", ErrInvalidSpec)
	}
	spec, err := spec.withDefaults()
	if err != nil {
		return Files{}, err
	}
	leaves, err := spec.leaves(dir)
	if err != nil {
		return Files{}, err
	}
	files := Files{Dir: dir, CA: filepath.Join(dir, CAFile), CAKey: filepath.Join(dir, CAKeyFile)}
	ca, err := findCA(files.CA, files.CAKey, spec.Now, spec.Force)
	if err != nil {
		return Files{}, err
	}
	if !spec.Force {
		for _, l := range leaves {
			if err := refuseExisting(l.Cert, l.Key); err != nil {
				return Files{}, err
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("certs: create %s: %w", dir, err)
	}
	if ca != nil {
		files.CAReused = true
	} else if ca, err = newCA(files.CA, files.CAKey, spec); err != nil {
		return Files{}, err
	}
	files.CANotAfter = ca.cert.NotAfter
	for _, l := range leaves {
		issued, err := ca.issue(l, spec)
		if err != nil {
			return Files{}, err
		}
		files.Leaves = append(files.Leaves, issued)
	}
	return files, nil
}

func (s Spec) withDefaults() (Spec, error) {
	switch {
	case s.LeafValidity < 0:
		return s, fmt.Errorf("%w: leaf validity %v is negative", ErrInvalidSpec, s.LeafValidity)
	case s.CAValidity < 0:
		return s, fmt.Errorf("%w: CA validity %v is negative", ErrInvalidSpec, s.CAValidity)
	}
	if s.LeafValidity == 0 {
		s.LeafValidity = DefaultLeafValidity
	}
	if s.CAValidity == 0 {
		s.CAValidity = DefaultCAValidity
	}
	if s.Now.IsZero() {
		s.Now = time.Now()
	}
	return s, nil
}

// newCA makes a CA and writes its files. findCA has ruled on any that
// exist: they go only with spec.Force.
func newCA(certPath, keyPath string, spec Spec) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"clockd"}, CommonName: "clockd development CA"},
		NotBefore:             spec.Now.Add(-Backdate),
		NotAfter:              spec.Now.Add(spec.CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs: sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse new CA: %w", err)
	}
	if err := writeKeyPair(certPath, keyPath, der, key, spec.Force); err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key}, nil
}

// issue signs l with a new key and writes its files.
func (a *authority) issue(l Leaf, spec Spec) (Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Leaf{}, fmt.Errorf("certs: generate key for %s: %w", l.Name, err)
	}
	serial, err := newSerial()
	if err != nil {
		return Leaf{}, err
	}
	l.NotAfter = spec.Now.Add(spec.LeafValidity)
	if l.NotAfter.After(a.cert.NotAfter) {
		l.NotAfter = a.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"clockd"}, CommonName: l.Name},
		NotBefore:    spec.Now.Add(-Backdate),
		NotAfter:     l.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     l.DNSNames,
	}
	if l.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	for _, ip := range l.IPs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	for _, u := range l.URIs {
		parsed, err := url.Parse(u)
		if err != nil {
			panic(fmt.Sprintf("certs: URI SAN %q of %s does not parse: %v", u, l.Name, err))
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return Leaf{}, fmt.Errorf("certs: sign %s: %w", l.Name, err)
	}
	if err := writeKeyPair(l.Cert, l.Key, der, key, spec.Force); err != nil {
		return Leaf{}, err
	}
	return l, nil
}

// newSerial draws a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("certs: draw serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
