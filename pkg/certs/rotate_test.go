package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// readChain parses every certificate of a PEM file.
func readChain(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// verifies says whether the leaf file's chain verifies against root alone.
func verifies(t *testing.T, leafFile string, root *x509.Certificate, usage x509.ExtKeyUsage, now time.Time) error {
	t.Helper()
	chain := readChain(t, leafFile)
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func TestRotateCAKeepsOldAndNewTrustWorking(t *testing.T) {
	dir := t.TempDir()
	p := mustEnsure(t, testOptions(dir, t0))
	oldServerCA := readChain(t, p.ServerCA.Cert)[0]
	oldClientCA := readChain(t, p.ClientCA.Cert)[0]
	oldHash, err := CAHash(p.ServerCA.Cert)
	if err != nil {
		t.Fatal(err)
	}

	t1 := t0.Add(24 * time.Hour)
	r, err := RotateCA(dir, t1)
	if err != nil {
		t.Fatalf("RotateCA: %v", err)
	}
	if !slices.Equal(r.Rotated, RotatedCAs) {
		t.Errorf("rotated %v", r.Rotated)
	}
	if _, err := os.Stat(filepath.Join(r.Backup, "server-ca.key")); err != nil {
		t.Errorf("backup lacks the old CA key: %v", err)
	}
	bundle := readChain(t, p.ServerCA.Cert)
	if len(bundle) != 2 || !bundle[1].Equal(oldServerCA) || bundle[0].Equal(oldServerCA) {
		t.Fatalf("server-ca.crt should be [new, old], has %d certificates", len(bundle))
	}
	newServerCA, newClientCA := bundle[0], readChain(t, p.ClientCA.Cert)[0]

	p2 := mustEnsure(t, testOptions(dir, t1.Add(time.Minute)))
	for _, signer := range []string{p2.ServerCASigner, p2.ClientCASigner} {
		if chain := readChain(t, signer); len(chain) != 1 || chain[0].Equal(oldServerCA) || chain[0].Equal(oldClientCA) {
			t.Errorf("%s must hold the new CA alone, has %d certificates", filepath.Base(signer), len(chain))
		}
	}
	if !slices.ContainsFunc(p2.Changed, func(s string) bool { return s == "re-issued serving-kube-apiserver: not signed by current server-ca" }) {
		t.Errorf("leaves not re-issued from the new CA: %v", p2.Changed)
	}
	now := t1.Add(time.Hour)
	for _, tc := range []struct {
		leaf  string
		roots []*x509.Certificate
		usage x509.ExtKeyUsage
	}{
		{p2.APIServerServing.Cert, []*x509.Certificate{oldServerCA, newServerCA}, x509.ExtKeyUsageServerAuth},
		{p2.APIServerKubelet.Cert, []*x509.Certificate{oldClientCA, newClientCA}, x509.ExtKeyUsageClientAuth},
		{p2.Admin.Cert, []*x509.Certificate{oldClientCA, newClientCA}, x509.ExtKeyUsageClientAuth},
	} {
		for i, root := range tc.roots {
			if err := verifies(t, tc.leaf, root, tc.usage, now); err != nil {
				t.Errorf("%s against the %s CA: %v", filepath.Base(tc.leaf), []string{"old", "new"}[i], err)
			}
		}
	}

	hashes, err := TrustedCAHashes(dir)
	if err != nil {
		t.Fatal(err)
	}
	newHash, _ := CAHash(p.ServerCA.Cert)
	if !slices.Equal(hashes, []string{newHash, oldHash}) {
		t.Errorf("TrustedCAHashes = %v, want [new %s, old %s]", hashes, newHash, oldHash)
	}

	// A node issued from the new CA also verifies for peers on the old one.
	node, err := EnsureNode(NodeOptions{CADir: dir, Dir: filepath.Join(dir, "node"), NodeName: "n1", Now: at(now)})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifies(t, node.KubeletServing.Cert, oldServerCA, x509.ExtKeyUsageServerAuth, now); err != nil {
		t.Errorf("kubelet serving cert against the old server CA: %v", err)
	}
}

func TestRotateLeavesMovesOnlyLeaves(t *testing.T) {
	dir := t.TempDir()
	p := mustEnsure(t, testOptions(dir, t0))
	before := readChain(t, p.Admin.Cert)[0]
	names, backup, err := RotateLeaves(dir, []string{"client-admin"}, t0)
	if err != nil || !slices.Equal(names, []string{"client-admin"}) {
		t.Fatalf("RotateLeaves(client-admin) = %v, %v", names, err)
	}
	if _, err := os.Stat(filepath.Join(backup, "client-admin.key")); err != nil {
		t.Errorf("not in the backup: %v", err)
	}
	names, _, err = RotateLeaves(dir, nil, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == "server-ca" || n == "client-ca" || n == "etcd-ca" || n == "request-header-ca" {
			t.Errorf("a CA was moved: %s", n)
		}
	}
	if !slices.Contains(names, "serving-kube-apiserver") {
		t.Errorf("all leaves: got %v", names)
	}
	p2 := mustEnsure(t, testOptions(dir, t0.Add(time.Minute)))
	after := readChain(t, p2.Admin.Cert)[0]
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 || after.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(before.PublicKey) {
		t.Error("client-admin was not re-issued with a new key")
	}
	if _, err := os.Stat(p2.ServiceAccountKey); err != nil {
		t.Errorf("the service account key must stay: %v", err)
	}
}

func TestExpiring(t *testing.T) {
	dir := t.TempDir()
	mustEnsure(t, testOptions(dir, t0))
	soon, err := Expiring(t0.Add(leafValidity-10*24*time.Hour), 30*24*time.Hour, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(soon) == 0 || soon[0].IsCA {
		t.Fatalf("leaves end 10 days from then: got %+v", soon)
	}
	none, _ := Expiring(t0, 30*24*time.Hour, dir)
	if len(none) != 0 {
		t.Errorf("nothing ends within 30 days of issue: got %+v", none)
	}
}

func TestRotateCAReplacesAnExpiredCA(t *testing.T) {
	dir := t.TempDir()
	mustEnsure(t, testOptions(dir, t0))
	later := t0.Add(caValidity + 24*time.Hour)
	if _, err := Ensure(testOptions(dir, later)); err == nil || !strings.Contains(err.Error(), "rotate-ca") {
		t.Fatalf("an expired CA should be refused with the command that replaces it: %v", err)
	}
	r, err := RotateCA(dir, later)
	if err != nil {
		t.Fatalf("RotateCA of expired CAs: %v", err)
	}
	if want := append(slices.Clone(RotatedCAs), "etcd-ca"); !slices.Equal(r.Expired, want) || !slices.Equal(r.Rotated, want) {
		t.Errorf("Rotated = %v, Expired = %v, want %v (the etcd CA too, once it has ended)", r.Rotated, r.Expired, want)
	}
	for _, name := range RotatedCAs {
		if _, err := os.Stat(crossFile(dir, name)); err == nil {
			t.Errorf("%s: a cross-signed certificate from an expired CA", name)
		}
		if n := len(readChain(t, pair(dir, name).Cert)); n != 1 {
			t.Errorf("%s.crt holds %d certificates, want the new CA alone", name, n)
		}
	}
	if _, err := Ensure(testOptions(dir, later)); err != nil {
		t.Errorf("Ensure after replacing expired CAs: %v", err)
	}
	soon, err := Expiring(t0.Add(24*time.Hour), 30*24*time.Hour, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range soon {
		if c.Derived {
			t.Errorf("Expiring lists %s", c.File)
		}
	}
}

// A --service name that is no leaf certificate moves nothing.
func TestRotateNodeLeavesRefusesUnknownNames(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	if _, err := Ensure(testOptions(dir, now)); err != nil {
		t.Fatal(err)
	}
	before, _ := Inventory(dir)
	if _, err := RotateNodeLeaves([]string{dir, filepath.Join(dir, "absent")}, []string{"no-such-cert"}, now); err == nil || !strings.Contains(err.Error(), `--service "no-such-cert"`) {
		t.Fatalf("got %v", err)
	}
	if after, _ := Inventory(dir); len(after) != len(before) {
		t.Errorf("a refused rotation moved files: %d certificates before, %d after", len(before), len(after))
	}
	rotated, err := RotateNodeLeaves([]string{dir}, []string{"client-admin"}, now)
	if err != nil || len(rotated) != 1 || strings.Join(rotated[0].Names, ",") != "client-admin" {
		t.Errorf("rotate client-admin: %+v, %v", rotated, err)
	}
}
