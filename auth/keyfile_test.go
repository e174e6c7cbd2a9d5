package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func keyPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "node.key")
}

func fileMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestKeyFileRoundTrip(t *testing.T) {
	path := keyPath(t)
	key, err := GenerateKeyFile(path, false)
	if err != nil {
		t.Fatalf("GenerateKeyFile: %v", err)
	}
	if m := fileMode(t, path); m != 0o600 {
		t.Fatalf("key file mode = %#o, want 0600", m)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(data); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key file is not a PEM PRIVATE KEY block:\n%s", data)
	}
	got, err := LoadKeyFile(path)
	if err != nil {
		t.Fatalf("LoadKeyFile: %v", err)
	}
	if !got.Equal(key) {
		t.Fatal("LoadKeyFile returned a different key than GenerateKeyFile")
	}
}

func TestGenerateKeyFileRefusesOverwrite(t *testing.T) {
	path := keyPath(t)
	first, err := GenerateKeyFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = GenerateKeyFile(path, false)
	if !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second GenerateKeyFile error = %v, want ErrKeyExists", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file %s", err, path)
	}
	kept, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !kept.Equal(first) {
		t.Fatal("refused overwrite still changed the key file")
	}
}

func TestGenerateKeyFileForce(t *testing.T) {
	path := keyPath(t)
	first, err := GenerateKeyFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := GenerateKeyFile(path, true)
	if err != nil {
		t.Fatalf("GenerateKeyFile with force: %v", err)
	}
	if second.Equal(first) {
		t.Fatal("forced GenerateKeyFile returned the old key")
	}
	if m := fileMode(t, path); m != 0o600 {
		t.Fatalf("replaced key file mode = %#o, want 0600", m)
	}
	got, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(second) {
		t.Fatal("key file does not hold the new key")
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after the replace, want only the key file: %v", len(entries), entries)
	}
}

func TestGenerateKeyFileForceCreates(t *testing.T) {
	path := keyPath(t)
	key, err := GenerateKeyFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadKeyFile(path)
	if err != nil || !got.Equal(key) {
		t.Fatalf("LoadKeyFile = %v; want the generated key", err)
	}
}

func TestGenerateKeyFileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "node.key")
	for _, force := range []bool{false, true} {
		if _, err := GenerateKeyFile(path, force); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("GenerateKeyFile(force=%v) in a missing directory: %v, want fs.ErrNotExist", force, err)
		}
	}
}

func TestLoadKeyFileMissing(t *testing.T) {
	path := keyPath(t)
	_, err := LoadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadKeyFile(missing) = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file %s", err, path)
	}
}

func TestLoadKeyFilePermissions(t *testing.T) {
	for _, mode := range []fs.FileMode{0o644, 0o640, 0o604, 0o620, 0o610} {
		path := keyPath(t)
		if _, err := GenerateKeyFile(path, false); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeyFile(path)
		if !errors.Is(err, ErrKeyPermissions) {
			t.Fatalf("LoadKeyFile(mode %#o) = %v, want ErrKeyPermissions", mode, err)
		}
		if !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("error %q does not suggest chmod 600 %s", err, path)
		}
	}
	path := keyPath(t)
	if _, err := GenerateKeyFile(path, false); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(path); err != nil {
		t.Fatalf("LoadKeyFile(mode 0400) = %v, want success", err)
	}
}

func TestLoadKeyFileInvalid(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPKCS8, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecSEC1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	good := keyPath(t)
	if _, err := GenerateKeyFile(good, false); err != nil {
		t.Fatal(err)
	}
	goodPEM, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }

	for name, content := range map[string][]byte{
		"empty":          nil,
		"garbage":        []byte("this is not a key\n"),
		"public key PEM": pemOf("PUBLIC KEY", []byte{1, 2, 3}),
		"SEC1 EC key":    pemOf("EC PRIVATE KEY", ecSEC1),
		"ECDSA PKCS#8":   pemOf("PRIVATE KEY", ecPKCS8),
		"bad DER":        pemOf("PRIVATE KEY", []byte("not DER")),
		"two keys":       append(bytes.Clone(goodPEM), goodPEM...),
		"encrypted": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY",
			Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}),
	} {
		t.Run(name, func(t *testing.T) {
			path := keyPath(t)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := LoadKeyFile(path)
			if !errors.Is(err, ErrInvalidKeyFile) {
				t.Fatalf("LoadKeyFile = %x, %v; want ErrInvalidKeyFile", key, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file %s", err, path)
			}
			t.Log(err)
		})
	}
}

func TestLoadKeyFileDirectory(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKeyFile(dir); !errors.Is(err, ErrInvalidKeyFile) {
		t.Fatalf("LoadKeyFile(directory) = %v, want ErrInvalidKeyFile", err)
	}
}
