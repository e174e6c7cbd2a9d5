package auth

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Errors about key files. Each returned error wraps one of them (or an
// error from the os package, for files that cannot be read or written)
// and names the file.
var (
	// ErrKeyExists: GenerateKeyFile without force found a file in the way.
	ErrKeyExists = errors.New("key file already exists")
	// ErrKeyPermissions: the key file is open to group or others.
	ErrKeyPermissions = errors.New("key file permissions are too open")
	// ErrInvalidKeyFile: the file does not hold one PEM encoded Ed25519
	// private key.
	ErrInvalidKeyFile = errors.New("invalid key file")
	// ErrSecretPermissions: a file holding a secret other than the key
	// (spool.secret_file, a config file holding tokens) is open to group
	// or others.
	ErrSecretPermissions = errors.New("secret file permissions are too open")
)

// keyPEMType is the PEM block type of a PKCS#8 private key.
const keyPEMType = "PRIVATE KEY"

// maxKeyFileSize bounds what LoadKeyFile reads; a real key file is ~120 bytes.
const maxKeyFileSize = 64 << 10

// GenerateKeyFile creates a new Ed25519 private key and writes it to path as
// a PEM "PRIVATE KEY" (PKCS#8) block, readable and writable by the owner
// only (mode 0600).
//
// Without force an existing file is left alone and the error wraps
// ErrKeyExists. With force an existing file is replaced atomically: the key
// is written to a temporary file in the same directory, then renamed.
func GenerateKeyFile(path string, force bool) (ed25519.PrivateKey, error) {
	if path == "" {
		return nil, errors.New("key file path is empty")
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key for %s: %w", path, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key for %s: %w", path, err)
	}
	data := encodeKeyPEM(der)
	if force {
		err = replaceFile(path, data)
	} else {
		err = createFile(path, data)
	}
	if err != nil {
		return nil, err
	}
	return key, nil
}

// encodeKeyPEM returns a PKCS#8 key as a PEM "PRIVATE KEY" block.
func encodeKeyPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: keyPEMType, Bytes: der})
}

// createFile writes data to a new file at path, failing if path exists.
func createFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %s (remove it or force the overwrite to replace the key)", ErrKeyExists, path)
	}
	if err != nil {
		return fmt.Errorf("creating key file: %w", err)
	}
	if err := writeAndClose(f, data); err != nil {
		os.Remove(path) // ours: O_EXCL created it
		return fmt.Errorf("writing key file: %w", err)
	}
	return nil
}

// replaceFile atomically puts a file holding data at path.
func replaceFile(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file for key file %s: %w", path, err)
	}
	tmp := f.Name()
	if err := writeAndClose(f, data); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // best effort: persist the rename
		d.Sync()
		d.Close()
	}
	return nil
}

// writeAndClose writes data to f with mode 0600 whatever the umask, syncs
// it and closes it.
func writeAndClose(f *os.File, data []byte) error {
	err := f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// LoadKeyFile reads an Ed25519 private key written by GenerateKeyFile.
//
// It refuses a file that group or others may access (the error wraps
// ErrKeyPermissions) and anything but a single PEM "PRIVATE KEY" block
// holding a PKCS#8 Ed25519 key (ErrInvalidKeyFile). A missing or unreadable
// file gives the os error, wrapped, so errors.Is(err, fs.ErrNotExist) works.
func LoadKeyFile(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w %s: not a regular file (mode %s)", ErrInvalidKeyFile, path, fi.Mode())
	}
	if err := CheckPrivateMode(path, fi.Mode(), ErrKeyPermissions); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w %s: larger than %d bytes, not a key file", ErrInvalidKeyFile, path, maxKeyFileSize)
	}
	return parseKeyPEM(path, data)
}

// CheckPrivateMode refuses a file, at path with the given mode, that group
// or others may access: the error wraps kind (ErrKeyPermissions,
// ErrSecretPermissions) and names the file, its mode and the fix. Windows
// has no such mode bits and is not checked.
func CheckPrivateMode(path string, mode fs.FileMode, kind error) error {
	if perm := mode.Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return fmt.Errorf("%w: %s has mode %#o, so group or others may access it; run: chmod 600 %s",
			kind, path, perm, path)
	}
	return nil
}

// ReadSecretFile reads a file holding a secret (such as
// spool.secret_file): a regular file of at most max bytes that group and
// others may not access (else the error wraps ErrSecretPermissions). A
// missing or unreadable file gives the os error, wrapped. Errors name the
// file and never quote what it holds.
func ReadSecretFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret file %s: not a regular file (mode %s)", path, fi.Mode())
	}
	if err := CheckPrivateMode(path, fi.Mode(), ErrSecretPermissions); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading secret file %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("secret file %s: larger than %d bytes", path, max)
	}
	return data, nil
}

// parseKeyPEM decodes the contents of the key file at path.
func parseKeyPEM(path string, data []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w %s: no PEM block found; want a %q block as written by GenerateKeyFile",
			ErrInvalidKeyFile, path, keyPEMType)
	}
	if block.Type != keyPEMType {
		return nil, fmt.Errorf("%w %s: PEM block is %q, want %q (a PKCS#8 Ed25519 key)",
			ErrInvalidKeyFile, path, block.Type, keyPEMType)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("%w %s: PEM block has headers (encrypted keys are not supported)",
			ErrInvalidKeyFile, path)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w %s: unexpected data after the %q block", ErrInvalidKeyFile, path, keyPEMType)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		// The asn1 details of err would only be noise here.
		return nil, fmt.Errorf("%w %s: %q block does not hold a valid PKCS#8 key",
			ErrInvalidKeyFile, path, keyPEMType)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w %s: holds %s private key, want Ed25519",
			ErrInvalidKeyFile, path, keyKind(parsed))
	}
	return key, nil
}

// keyKind names the algorithm of a parsed private key.
func keyKind(k any) string {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return "an RSA"
	case *ecdsa.PrivateKey:
		return "an ECDSA " + k.Curve.Params().Name
	case *ecdh.PrivateKey:
		return "an X25519 (ECDH)"
	default:
		return fmt.Sprintf("a %T", k)
	}
}
