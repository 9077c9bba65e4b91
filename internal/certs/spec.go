package certs

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
)

// The SANs every node certificate carries besides its own name.
var (
	defaultNodeDNS = []string{"localhost"}
	defaultNodeIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
)

const maxVMIDLen = 64

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidSpec}, args...)...)
}

// leaves checks s and lists the certificates it asks for, unsigned, with
// their file paths in dir.
func (s Spec) leaves(dir string) ([]Leaf, error) {
	var out []Leaf
	seen := make(map[string]bool)
	add := func(l Leaf) error {
		if seen[l.Name] {
			return invalid("%s is listed twice", l.Name)
		}
		seen[l.Name] = true
		l.Cert = filepath.Join(dir, l.Name+".pem")
		l.Key = filepath.Join(dir, l.Name+"-key.pem")
		out = append(out, l)
		return nil
	}
	for _, n := range s.Nodes {
		l, err := nodeLeaf(n)
		if err == nil {
			err = add(l)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, h := range s.Hosts {
		if err := checkDNSName(h); err != nil {
			return nil, invalid("host %q: %v", h, err)
		}
		if err := add(Leaf{Name: "host-" + h, DNSNames: []string{h}, URIs: []string{URIHost}}); err != nil {
			return nil, err
		}
	}
	for _, id := range s.VMs {
		if err := checkVMID(id); err != nil {
			return nil, invalid("VM %q: %v", id, err)
		}
		if err := add(Leaf{Name: "vm-" + id, URIs: []string{URIVMPrefix + id}}); err != nil {
			return nil, err
		}
	}
	if s.Admin {
		if err := add(Leaf{Name: "admin", URIs: []string{URIAdmin}}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nodeLeaf is the certificate of n, its extra names checked and merged
// into the defaults without duplicates.
func nodeLeaf(n Node) (Leaf, error) {
	if n.ID == 0 {
		return Leaf{}, invalid("node id 0")
	}
	name := NodeName(n.ID)
	l := Leaf{
		Name:     name,
		DNSNames: append([]string{name}, defaultNodeDNS...),
		IPs:      slices.Clone(defaultNodeIPs),
		URIs:     []string{URIPeer, URIHost},
		Server:   true,
	}
	for _, d := range n.DNSNames {
		if err := checkDNSName(d); err != nil {
			return Leaf{}, invalid("node %d: DNS name %q: %v", n.ID, d, err)
		}
		if !slices.ContainsFunc(l.DNSNames, func(have string) bool { return strings.EqualFold(have, d) }) {
			l.DNSNames = append(l.DNSNames, d)
		}
	}
	for _, ip := range n.IPs {
		switch {
		case !ip.IsValid():
			return Leaf{}, invalid("node %d: invalid IP address", n.ID)
		case ip.Zone() != "":
			return Leaf{}, invalid("node %d: IP address %s: a certificate cannot carry a zone", n.ID, ip)
		}
		if ip = ip.Unmap(); !slices.Contains(l.IPs, ip) {
			l.IPs = append(l.IPs, ip)
		}
	}
	return l, nil
}

// checkDNSName accepts a host name as certificates carry it: dot-separated
// labels of letters, digits and inner hyphens, no wildcard, not an IP
// address.
func checkDNSName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > 253:
		return errors.New("longer than 253 characters")
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return errors.New("an IP address, not a DNS name")
	}
	for label := range strings.SplitSeq(name, ".") {
		if err := checkLabel(label); err != nil {
			return err
		}
	}
	return nil
}

func checkLabel(label string) error {
	switch {
	case label == "":
		return errors.New("empty label")
	case len(label) > 63:
		return fmt.Errorf("label %q is longer than 63 characters", label)
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Errorf("label %q starts or ends with a hyphen", label)
	}
	for _, c := range label {
		if !isAlnum(c) && c != '-' {
			return fmt.Errorf("character %q is not a letter, digit or hyphen", c)
		}
	}
	return nil
}

// checkVMID keeps VM ids safe in file names and URIs.
func checkVMID(id string) error {
	switch {
	case id == "":
		return errors.New("empty")
	case len(id) > maxVMIDLen:
		return fmt.Errorf("longer than %d characters", maxVMIDLen)
	case id[0] == '.':
		return errors.New("starts with a dot")
	}
	for _, c := range id {
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("character %q is not a letter, digit, '.', '_' or '-'", c)
		}
	}
	return nil
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
