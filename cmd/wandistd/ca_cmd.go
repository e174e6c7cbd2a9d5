package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/wandist/wandist/auth"
)

// Files `wandistd ca init` writes in its directory.
const (
	caCertName = "ca.crt"
	caKeyName  = "ca.key"
	gossipName = "gossip.key"
)

// gossipKeySize is the size of the cluster's gossip secret (AES-256).
const gossipKeySize = 32

func cmdCA(ctx context.Context, args []string, stdout, stderr io.Writer, stdin io.Reader) error {
	const synopsis = "usage: wandistd ca init -cluster C [-trust-domain TD] [-dir D] [-validity 87600h]\n" +
		"       wandistd ca issue -ca D -node N (-key node.key | -public-key K) [-out node.crt] [-validity 2160h]"
	if len(args) == 0 {
		return &usageError{cmd: "ca", msg: "want a subcommand: init or issue"}
	}
	switch args[0] {
	case "init":
		return caInit(args[1:], stdout, stderr)
	case "issue":
		return caIssue(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, synopsis)
		return nil
	}
	return &usageError{cmd: "ca", msg: fmt.Sprintf("unknown subcommand %q: want init or issue", args[0])}
}

// caInit writes a new cluster CA and the cluster's gossip secret.
func caInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca init", "-cluster C [-trust-domain TD] [-dir D] [-validity 87600h]", stdout)
	cluster := fs.String("cluster", "", "the cluster the CA issues certificates for (required)")
	td := fs.String("trust-domain", auth.DefaultTrustDomain, "the SPIFFE trust domain of its certificates")
	dir := fs.String("dir", ".", "write ca.crt, ca.key and gossip.key to this `directory`")
	validity := fs.Duration("validity", 87600*time.Hour, "how long the CA certificate is valid")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *cluster == "":
		return usageErr(fs, "-cluster is required")
	case fs.NArg() > 0:
		return usageErr(fs, "unexpected argument %q", fs.Arg(0))
	case *validity <= 0:
		return usageErr(fs, "-validity must be positive, got %v", *validity)
	}
	crt, key, gossip := filepath.Join(*dir, caCertName), filepath.Join(*dir, caKeyName), filepath.Join(*dir, gossipName)
	for _, p := range []string{crt, key, gossip} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s exists; refusing to overwrite a cluster CA (remove it, or use another -dir)", p)
		}
	}
	ca, err := auth.NewCA(*td, *cluster, *validity, time.Now())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	if err := ca.Save(crt, key); err != nil {
		return err
	}
	secret := make([]byte, gossipKeySize)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	if err := auth.WriteNewFile(gossip, []byte(base64.StdEncoding.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "CA of cluster %s (trust domain %s), valid until %s:\n  %s  (give to every node and remote cluster: trust.ca_files, remotes[].ca_files)\n  %s  (secret: keep it off the nodes)\n  %s  (secret: the cluster's gossip key)\n",
		ca.Cluster, ca.TrustDomain, ca.Cert.NotAfter.UTC().Format(time.RFC3339), crt, key, gossip)
	return nil
}

// caIssue writes a node certificate signed by the CA in -ca.
func caIssue(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca issue", "-ca D -node N (-key node.key | -public-key K) [-out node.crt] [-validity 2160h]", stdout)
	dir := fs.String("ca", "", "the CA's `directory` (holding ca.crt and ca.key; required)")
	node := fs.String("node", "", "the node's name (required); its cluster is the CA's")
	keyFile := fs.String("key", "", "the node's private key `file` (only its public half is used)")
	pubText := fs.String("public-key", "", "the node's public key, ed25519:... as `wandistd keygen` prints it")
	out := fs.String("out", "", "write the certificate to `file` (default NODE.crt; - for stdout)")
	validity := fs.Duration("validity", 2160*time.Hour, "how long the certificate is valid (cut at the CA's expiry)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *dir == "":
		return usageErr(fs, "-ca DIR is required")
	case *node == "":
		return usageErr(fs, "-node is required")
	case (*keyFile == "") == (*pubText == ""):
		return usageErr(fs, "give exactly one of -key FILE and -public-key K")
	case fs.NArg() > 0:
		return usageErr(fs, "unexpected argument %q", fs.Arg(0))
	case *validity <= 0:
		return usageErr(fs, "-validity must be positive, got %v", *validity)
	}
	pub, err := nodePublicKey(*keyFile, *pubText)
	if err != nil {
		return err
	}
	ca, err := auth.LoadCA(filepath.Join(*dir, caCertName), filepath.Join(*dir, caKeyName))
	if err != nil {
		return err
	}
	id := auth.PeerID{Cluster: ca.Cluster, Node: *node}
	if err := id.Validate(); err != nil {
		return err
	}
	crt, err := ca.Issue(id, pub, *validity, time.Now())
	if err != nil {
		return err
	}
	if *out == "-" {
		_, err := stdout.Write(crt)
		return err
	}
	path := *out
	if path == "" {
		path = *node + ".crt"
	}
	if err := writeReplace(path, crt); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "certificate of %s written to %s (set certificate: in the node's config)\n", id, path)
	return nil
}

func nodePublicKey(keyFile, text string) (ed25519.PublicKey, error) {
	if text != "" {
		return auth.ParsePublicKey(text)
	}
	key, err := auth.LoadKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	return key.Public().(ed25519.PublicKey), nil
}

// writeReplace atomically puts a file of mode 0644 holding data at path (a
// renewed certificate replaces the old one).
func writeReplace(path string, data []byte) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := auth.WriteNewFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return errors.Join(fmt.Errorf("writing %s", path), err)
	}
	return nil
}
