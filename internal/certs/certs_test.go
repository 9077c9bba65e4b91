package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// now is the issuing time of every test, so verification is reproducible.
var now = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

func mustInit(t *testing.T, dir string, spec Spec) Files {
	t.Helper()
	if spec.Now.IsZero() {
		spec.Now = now
	}
	files, err := Init(dir, spec)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return files
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return cert
}

func caPool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, filepath.Join(dir, CAFile)))
	return pool
}

func fullSpec() Spec {
	return Spec{
		Nodes: []Node{
			{ID: 1, DNSNames: []string{"hv1.example.com", "localhost"}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("::ffff:127.0.0.1")}},
			{ID: 2},
		},
		Hosts: []string{"hv1"},
		VMs:   []string{"7"},
		Admin: true,
	}
}

func TestChainVerifies(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, fullSpec())
	pool := caPool(t, dir)
	tests := []struct {
		name       string
		dnsName    string // checked for server auth
		wantServer bool
	}{
		{"node-1", "node-1", true},
		{"node-1", "hv1.example.com", true},
		{"node-2", "node-2", true},
		{"host-hv1", "hv1", false},
		{"vm-7", "", false},
		{"admin", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+tc.dnsName, func(t *testing.T) {
			cert := readCert(t, filepath.Join(dir, tc.name+".pem"))
			client := x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
			if _, err := cert.Verify(client); err != nil {
				t.Errorf("client auth: %v", err)
			}
			server := x509.VerifyOptions{Roots: pool, CurrentTime: now, DNSName: tc.dnsName, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			_, err := cert.Verify(server)
			if got := err == nil; got != tc.wantServer {
				t.Errorf("server auth as %q: err %v, want success %v", tc.dnsName, err, tc.wantServer)
			}
		})
	}
}

func TestSANs(t *testing.T) {
	dir := t.TempDir()
	files := mustInit(t, dir, fullSpec())
	ips := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, v := range s {
			out = append(out, netip.MustParseAddr(v))
		}
		return out
	}
	tests := []struct {
		name string
		dns  []string
		ips  []netip.Addr
		uris []string
	}{
		{"node-1", []string{"node-1", "localhost", "hv1.example.com"}, ips("127.0.0.1", "::1", "10.0.0.1"), []string{URIPeer, URIHost}},
		{"node-2", []string{"node-2", "localhost"}, ips("127.0.0.1", "::1"), []string{URIPeer, URIHost}},
		{"host-hv1", []string{"hv1"}, nil, []string{URIHost}},
		{"vm-7", nil, nil, []string{"clockd:vm:7"}},
		{"admin", nil, nil, []string{URIAdmin}},
	}
	if len(files.Leaves) != len(tests) {
		t.Fatalf("Init reported %d leaves, want %d", len(files.Leaves), len(tests))
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leaf := files.Leaves[i]
			if leaf.Name != tc.name || leaf.Cert != filepath.Join(dir, tc.name+".pem") || leaf.Key != filepath.Join(dir, tc.name+"-key.pem") {
				t.Errorf("reported leaf %+v, want %s in %s", leaf, tc.name, dir)
			}
			cert := readCert(t, leaf.Cert)
			var gotIPs []netip.Addr
			for _, ip := range cert.IPAddresses {
				a, _ := netip.AddrFromSlice(ip)
				gotIPs = append(gotIPs, a.Unmap())
			}
			var gotURIs []string
			for _, u := range cert.URIs {
				gotURIs = append(gotURIs, u.String())
			}
			switch {
			case cert.Subject.CommonName != tc.name:
				t.Errorf("common name %q, want %q", cert.Subject.CommonName, tc.name)
			case !slices.Equal(cert.DNSNames, tc.dns) || !slices.Equal(leaf.DNSNames, tc.dns):
				t.Errorf("DNS SANs %q (reported %q), want %q", cert.DNSNames, leaf.DNSNames, tc.dns)
			case !slices.Equal(gotIPs, tc.ips) || !slices.Equal(leaf.IPs, tc.ips):
				t.Errorf("IP SANs %v (reported %v), want %v", gotIPs, leaf.IPs, tc.ips)
			case !slices.Equal(gotURIs, tc.uris) || !slices.Equal(leaf.URIs, tc.uris):
				t.Errorf("URI SANs %q (reported %q), want %q", gotURIs, leaf.URIs, tc.uris)
			}
			key, ok := cert.PublicKey.(*ecdsa.PublicKey)
			if !ok || key.Curve != elliptic.P256() {
				t.Errorf("public key %T, want ECDSA P-256", cert.PublicKey)
			}
			if !cert.NotBefore.Equal(now.Add(-Backdate)) || !cert.NotAfter.Equal(now.Add(DefaultLeafValidity)) || !leaf.NotAfter.Equal(cert.NotAfter) {
				t.Errorf("valid %v to %v (reported %v), want %v to %v", cert.NotBefore, cert.NotAfter, leaf.NotAfter, now.Add(-Backdate), now.Add(DefaultLeafValidity))
			}
		})
	}
	ca := readCert(t, files.CA)
	if !ca.IsCA || !ca.NotAfter.Equal(now.Add(DefaultCAValidity)) || !files.CANotAfter.Equal(ca.NotAfter) || files.CAReused {
		t.Errorf("CA: IsCA %v, not after %v (reported %v), reused %v", ca.IsCA, ca.NotAfter, files.CANotAfter, files.CAReused)
	}
}

// handshake runs TLS 1.3 as the transport configures it: the client dials
// serverName, the server requires a client certificate from the CA.
func handshake(t *testing.T, dir, client, server, serverName string) (clientErr, serverErr error, clientDNS []string) {
	t.Helper()
	load := func(name string) tls.Certificate {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
		if err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
		return pair
	}
	pool := caPool(t, dir)
	clock := func() time.Time { return now }
	cConn, sConn := net.Pipe()
	srv := tls.Server(sConn, &tls.Config{
		Certificates: []tls.Certificate{load(server)}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13, Time: clock,
		// net.Pipe has no buffer: a ticket the client never reads would
		// block the server.
		SessionTicketsDisabled: true,
	})
	cli := tls.Client(cConn, &tls.Config{
		Certificates: []tls.Certificate{load(client)}, RootCAs: pool,
		ServerName: serverName, MinVersion: tls.VersionTLS13, Time: clock,
	})
	done := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err == nil {
			// In TLS 1.3 the server's handshake ends before the client's
			// certificate is checked on the client's side; a read sees
			// the client's verdict.
			_, err = srv.Read(make([]byte, 1))
		}
		sConn.Close()
		done <- err
	}()
	clientErr = cli.Handshake()
	if clientErr == nil {
		_, clientErr = cli.Write([]byte{1})
	}
	cConn.Close()
	serverErr = <-done
	if clientErr == nil {
		if peers := srv.ConnectionState().PeerCertificates; len(peers) > 0 {
			clientDNS = peers[0].DNSNames
		}
	}
	return clientErr, serverErr, clientDNS
}

func TestTLSHandshake(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, fullSpec())
	tests := []struct {
		client, server, serverName string
		wantErr                    string // in the client's error; empty for success
	}{
		{"node-1", "node-2", "node-2", ""},
		{"node-2", "node-1", "node-1", ""},
		{"node-1", "node-2", "node-3", "node-3"},
		{"node-1", "node-2", "localhost", ""},
		{"admin", "node-1", "node-1", ""},
		{"vm-7", "node-1", "hv1.example.com", ""},
		{"node-1", "host-hv1", "hv1", "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.client+"->"+tc.server+"@"+tc.serverName, func(t *testing.T) {
			clientErr, serverErr, clientDNS := handshake(t, dir, tc.client, tc.server, tc.serverName)
			if tc.wantErr == "" {
				if clientErr != nil || serverErr != nil {
					t.Fatalf("client error %v, server error %v", clientErr, serverErr)
				}
				if strings.HasPrefix(tc.client, "node-") && !slices.Contains(clientDNS, tc.client) {
					t.Errorf("server sees client names %q, want %q among them", clientDNS, tc.client)
				}
				return
			}
			if clientErr == nil || !strings.Contains(clientErr.Error(), tc.wantErr) {
				t.Errorf("client error %v, want one mentioning %q", clientErr, tc.wantErr)
			}
			if serverErr == nil {
				t.Error("server handshake succeeded, want failure")
			}
		})
	}
}

func TestRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	first := mustInit(t, dir, Spec{Nodes: []Node{{ID: 1}}})
	before, _ := os.ReadFile(first.Leaves[0].Cert)

	_, err := Init(dir, Spec{Nodes: []Node{{ID: 2}, {ID: 1}}, Now: now})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), filepath.Join(dir, "node-1.pem")) {
		t.Fatalf("Init over node-1: err %v, want ErrExists naming node-1.pem", err)
	}
	if ok, _ := exists(filepath.Join(dir, "node-2.pem")); ok {
		t.Error("a refused Init wrote node-2.pem")
	}
	if after, _ := os.ReadFile(first.Leaves[0].Cert); !bytes.Equal(before, after) {
		t.Error("a refused Init changed node-1.pem")
	}

	forced := mustInit(t, dir, Spec{Nodes: []Node{{ID: 1}}, Force: true})
	if after, _ := os.ReadFile(forced.Leaves[0].Cert); bytes.Equal(before, after) {
		t.Error("Force left node-1.pem unchanged")
	}
	if !forced.CAReused {
		t.Error("Force replaced a usable CA")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Errorf("%d files in %s after Force, want 4 (no temporary files left)", len(entries), dir)
	}
}

func TestReusesCA(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, Spec{Nodes: []Node{{ID: 1}}})
	caBefore, _ := os.ReadFile(filepath.Join(dir, CAFile))
	keyBefore, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))

	files := mustInit(t, dir, Spec{Nodes: []Node{{ID: 2}}})
	caAfter, _ := os.ReadFile(filepath.Join(dir, CAFile))
	keyAfter, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if !files.CAReused || !bytes.Equal(caBefore, caAfter) || !bytes.Equal(keyBefore, keyAfter) {
		t.Fatalf("CA reused %v, CA files unchanged %v", files.CAReused, bytes.Equal(caBefore, caAfter) && bytes.Equal(keyBefore, keyAfter))
	}
	if clientErr, serverErr, _ := handshake(t, dir, "node-1", "node-2", "node-2"); clientErr != nil || serverErr != nil {
		t.Errorf("node-1 to node-2 across Init runs: client %v, server %v", clientErr, serverErr)
	}
}

// writeSEC1CA writes a CA made outside this package: its key in SEC 1 form.
func writeSEC1CA(t *testing.T, dir string, notAfter time.Time) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: newSerialForTest(t), Subject: pkix.Name{CommonName: "org CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, CAFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, CAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}

func newSerialForTest(t *testing.T) *big.Int {
	t.Helper()
	n, err := newSerial()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestExistingCA(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		wantErr error  // without Force
		naming  string // the file the error names
	}{
		{"foreign SEC 1 CA is reused", func(t *testing.T, dir string) { writeSEC1CA(t, dir, now.Add(time.Hour)) }, nil, ""},
		{"expired", func(t *testing.T, dir string) { writeSEC1CA(t, dir, now) }, ErrUnusableCA, CAFile},
		{"key does not match", func(t *testing.T, dir string) {
			writeSEC1CA(t, dir, now.Add(time.Hour))
			other := t.TempDir()
			writeSEC1CA(t, other, now.Add(time.Hour))
			data, _ := os.ReadFile(filepath.Join(other, CAKeyFile))
			os.WriteFile(filepath.Join(dir, CAKeyFile), data, 0o600)
		}, ErrUnusableCA, CAKeyFile},
		{"not PEM", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, CAFile), []byte("junk"), 0o644)
			os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("junk"), 0o600)
		}, ErrUnusableCA, CAFile},
		{"leaf as CA", func(t *testing.T, dir string) {
			src := t.TempDir()
			mustInit(t, src, Spec{Admin: true})
			data, _ := os.ReadFile(filepath.Join(src, "admin.pem"))
			os.WriteFile(filepath.Join(dir, CAFile), data, 0o644)
			data, _ = os.ReadFile(filepath.Join(src, "admin-key.pem"))
			os.WriteFile(filepath.Join(dir, CAKeyFile), data, 0o600)
		}, ErrUnusableCA, CAFile},
		{"certificate without key", func(t *testing.T, dir string) {
			writeSEC1CA(t, dir, now.Add(time.Hour))
			os.Remove(filepath.Join(dir, CAKeyFile))
		}, ErrExists, CAFile},
		{"key without certificate", func(t *testing.T, dir string) {
			writeSEC1CA(t, dir, now.Add(time.Hour))
			os.Remove(filepath.Join(dir, CAFile))
		}, ErrExists, CAKeyFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			files, err := Init(dir, Spec{Nodes: []Node{{ID: 1}}, Now: now})
			if tc.wantErr == nil {
				if err != nil || !files.CAReused {
					t.Fatalf("Init: err %v, CA reused %v; want reuse", err, files.CAReused)
				}
				if _, err := readCert(t, files.Leaves[0].Cert).Verify(x509.VerifyOptions{Roots: caPool(t, dir), CurrentTime: now}); err != nil {
					t.Errorf("leaf signed by the reused CA: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), filepath.Join(dir, tc.naming)) {
				t.Fatalf("Init: err %v, want %v naming %s", err, tc.wantErr, tc.naming)
			}
			if ok, _ := exists(filepath.Join(dir, "node-1.pem")); ok {
				t.Error("a refused Init wrote node-1.pem")
			}
			files, err = Init(dir, Spec{Nodes: []Node{{ID: 1}}, Now: now, Force: true})
			if err != nil || files.CAReused {
				t.Fatalf("Init with Force: err %v, CA reused %v; want a new CA", err, files.CAReused)
			}
			if _, err := readCert(t, files.Leaves[0].Cert).Verify(x509.VerifyOptions{Roots: caPool(t, dir), CurrentTime: now}); err != nil {
				t.Errorf("leaf signed by the new CA: %v", err)
			}
		})
	}
}

func TestLeafNeverOutlivesCA(t *testing.T) {
	dir := t.TempDir()
	files := mustInit(t, dir, Spec{Admin: true, CAValidity: 30 * 24 * time.Hour, LeafValidity: 365 * 24 * time.Hour})
	if got := readCert(t, files.Leaves[0].Cert).NotAfter; !got.Equal(files.CANotAfter) {
		t.Errorf("leaf expires %v, want the CA's %v", got, files.CANotAfter)
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	for _, force := range []bool{false, true} {
		mustInit(t, dir, Spec{Nodes: []Node{{ID: 1}}, Force: force})
		want := map[string]os.FileMode{
			CAFile: 0o644, CAKeyFile: 0o600, "node-1.pem": 0o644, "node-1-key.pem": 0o600,
		}
		for name, mode := range want {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != mode {
				t.Errorf("force %v: %s has mode %o, want %o", force, name, fi.Mode().Perm(), mode)
			}
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("created directory has mode %o, want 700", fi.Mode().Perm())
	}
}

func TestInvalidSpec(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string // in the error
	}{
		{"node 0", Spec{Nodes: []Node{{ID: 0}}}, "node id 0"},
		{"duplicate node", Spec{Nodes: []Node{{ID: 3}, {ID: 3}}}, "node-3 is listed twice"},
		{"wildcard", Spec{Nodes: []Node{{ID: 1, DNSNames: []string{"*.example.com"}}}}, `"*.example.com"`},
		{"empty label", Spec{Nodes: []Node{{ID: 1, DNSNames: []string{"a..b"}}}}, `"a..b"`},
		{"IP as DNS name", Spec{Nodes: []Node{{ID: 1, DNSNames: []string{"10.0.0.1"}}}}, "an IP address"},
		{"zone", Spec{Nodes: []Node{{ID: 1, IPs: []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}}}}, "zone"},
		{"invalid IP", Spec{Nodes: []Node{{ID: 1, IPs: []netip.Addr{{}}}}}, "invalid IP"},
		{"bad host", Spec{Hosts: []string{"hv_1"}}, `host "hv_1"`},
		{"duplicate host", Spec{Hosts: []string{"a", "a"}}, "host-a is listed twice"},
		{"path in VM id", Spec{VMs: []string{"../x"}}, `VM "../x"`},
		{"slash in VM id", Spec{VMs: []string{"a/b"}}, `VM "a/b"`},
		{"negative validity", Spec{LeafValidity: -time.Hour}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Init(dir, tc.spec)
			if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrInvalidSpec mentioning %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("an invalid spec wrote %d files", len(entries))
			}
		})
	}
}
