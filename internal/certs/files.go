package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// File modes: private keys are for their owner only.
const (
	certMode fs.FileMode = 0o644
	keyMode  fs.FileMode = 0o600
)

// findCA rules on the CA files already in place. It returns the CA to
// reuse, or nil when a new one is to be written; it fails when that would
// replace a file without force.
func findCA(certPath, keyPath string, now time.Time, force bool) (*authority, error) {
	haveCert, err := exists(certPath)
	if err != nil {
		return nil, err
	}
	haveKey, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case !haveCert && !haveKey:
		return nil, nil
	case haveCert && haveKey:
		ca, err := loadCA(certPath, keyPath, now)
		if err != nil && force {
			return nil, nil
		}
		return ca, err
	case force:
		return nil, nil
	case haveCert:
		return nil, fmt.Errorf("%w: %s, without its key %s, so the CA cannot be reused", ErrExists, certPath, keyPath)
	default:
		return nil, fmt.Errorf("%w: %s, without its certificate %s, so the CA cannot be reused", ErrExists, keyPath, certPath)
	}
}

// loadCA reads a CA that can sign leaves valid at now. Its errors wrap
// ErrUnusableCA and name the file at fault.
func loadCA(certPath, keyPath string, now time.Time) (*authority, error) {
	unusable := func(path, format string, args ...any) error {
		return fmt.Errorf("%w: %s: "+format, append([]any{ErrUnusableCA, path}, args...)...)
	}
	der, err := readPEM(certPath, "CERTIFICATE")
	if err != nil {
		return nil, unusable(certPath, "%v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, unusable(certPath, "%v", err)
	}
	switch {
	case !cert.BasicConstraintsValid || !cert.IsCA:
		return nil, unusable(certPath, "not a CA certificate")
	case cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return nil, unusable(certPath, "key usage does not allow signing certificates")
	case now.Before(cert.NotBefore):
		return nil, unusable(certPath, "not valid until %s", cert.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(cert.NotAfter):
		return nil, unusable(certPath, "expired at %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := loadKey(keyPath)
	if err != nil {
		return nil, unusable(keyPath, "%v", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, unusable(keyPath, "key does not match %s", certPath)
	}
	return &authority{cert: cert, key: key}, nil
}

// loadKey reads a private key in PKCS #8, SEC 1 or PKCS #1 form.
func loadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", key)
	}
	return signer, nil
}

// readPEM returns the first block of path, which must have type typ.
func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	switch {
	case block == nil:
		return nil, errors.New("no PEM block")
	case block.Type != typ:
		return nil, fmt.Errorf("PEM block %q, want %q", block.Type, typ)
	}
	return block.Bytes, nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("certs: %w", err)
}

// refuseExisting fails with ErrExists on the first of paths that exists.
func refuseExisting(paths ...string) error {
	for _, p := range paths {
		ok, err := exists(p)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("%w: %s", ErrExists, p)
		}
	}
	return nil
}

// writeKeyPair writes the key, then the certificate der.
func writeKeyPair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey, replace bool) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certs: encode key %s: %w", keyPath, err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := writeFile(keyPath, keyPEM, keyMode, replace); err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return writeFile(certPath, certPEM, certMode, replace)
}

// writeFile creates path whole with exactly mode, or leaves nothing. Without
// replace it fails with ErrExists if path exists; with replace it renames a
// finished temporary file over path.
func writeFile(path string, data []byte, mode fs.FileMode, replace bool) (err error) {
	var f *os.File
	if replace {
		f, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
	}
	if err != nil {
		return fmt.Errorf("certs: create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(mode); err == nil {
		if _, err = f.Write(data); err == nil {
			err = f.Sync()
		}
	}
	if err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if replace {
		if err = os.Rename(f.Name(), path); err != nil {
			return fmt.Errorf("certs: replace %s: %w", path, err)
		}
	}
	return nil
}
