package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

func testOptions(dir string, now time.Time) Options {
	return Options{
		Dir:           dir,
		Hostname:      "node1",
		NodeIPs:       []net.IP{net.ParseIP("192.168.1.10")},
		ServiceIP:     net.ParseIP("10.43.0.1"),
		ClusterDomain: "cluster.local",
		Now:           at(now),
	}
}

func mustEnsure(t *testing.T, o Options) *PKI {
	t.Helper()
	p, err := Ensure(o)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return p
}

func ipStrings(ips []net.IP) []string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return s
}

func TestServingSANs(t *testing.T) {
	base := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost", "node1"}
	tests := []struct {
		name    string
		mod     func(*Options)
		wantDNS []string
		wantIPs []string
	}{
		{
			name:    "defaults",
			mod:     func(*Options) {},
			wantDNS: base,
			wantIPs: []string{"10.43.0.1", "127.0.0.1", "192.168.1.10", "::1"},
		},
		{
			name: "extra SANs split into IPs and names",
			mod: func(o *Options) {
				o.ExtraSANs = []string{"api.example.com", "10.0.0.5", "fd00::5", " lb.example.com "}
			},
			wantDNS: []string{"api.example.com", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "lb.example.com", "localhost", "node1"},
			wantIPs: []string{"10.0.0.5", "10.43.0.1", "127.0.0.1", "192.168.1.10", "::1", "fd00::5"},
		},
		{
			name: "duplicates removed, IPs compared by value",
			mod: func(o *Options) {
				o.NodeIPs = append(o.NodeIPs, net.ParseIP("192.168.1.10").To16(), net.ParseIP("192.168.1.10").To4())
				o.ExtraSANs = []string{"::ffff:127.0.0.1", "LOCALHOST", "node1", "10.43.0.1", "0:0:0:0:0:0:0:1", ""}
			},
			wantDNS: base,
			wantIPs: []string{"10.43.0.1", "127.0.0.1", "192.168.1.10", "::1"},
		},
		{
			name:    "no cluster domain, no service IP",
			mod:     func(o *Options) { o.ClusterDomain, o.ServiceIP = "", nil },
			wantDNS: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost", "node1"},
			wantIPs: []string{"127.0.0.1", "192.168.1.10", "::1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions("", t0)
			tt.mod(&o)
			dns, ips := ServingSANs(o)
			if !slices.Equal(dns, tt.wantDNS) {
				t.Errorf("DNS = %q, want %q", dns, tt.wantDNS)
			}
			if got := ipStrings(ips); !slices.Equal(got, tt.wantIPs) {
				t.Errorf("IPs = %q, want %q", got, tt.wantIPs)
			}
		})
	}
}

type fileState struct {
	data  string
	mtime time.Time
	mode  fs.FileMode
}

// snapshot records every file in dir, temp files included, so a test also
// catches leftovers from an interrupted atomic write.
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]fileState{}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = fileState{string(b), fi.ModTime(), fi.Mode()}
	}
	return m
}

// diff returns the names of files added, removed or modified between a and b.
func diff(a, b map[string]fileState) []string {
	var names []string
	for n, s := range a {
		if s2, ok := b[n]; !ok || s2 != s {
			names = append(names, n)
		}
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

type leafCase struct {
	name  string
	kp    KeyPair
	ca    KeyPair
	usage x509.ExtKeyUsage
	cn    string
	orgs  []string
}

func leavesOf(p *PKI) []leafCase {
	c := x509.ExtKeyUsageClientAuth
	m := []string{"system:masters"}
	return []leafCase{
		{"serving-kube-apiserver", p.APIServerServing, p.ServerCA, x509.ExtKeyUsageServerAuth, "kube-apiserver", nil},
		{"client-admin", p.Admin, p.ClientCA, c, "system:admin", m},
		{"client-controller", p.ControllerManager, p.ClientCA, c, "system:kube-controller-manager", nil},
		{"client-scheduler", p.Scheduler, p.ClientCA, c, "system:kube-scheduler", nil},
		{"client-kube-apiserver", p.APIServerKubelet, p.ClientCA, c, "system:kube-apiserver-kubelet-client", m},
		{"client-auth-proxy", p.AuthProxy, p.RequestHeaderCA, c, "system:auth-proxy", nil},
		{"client-supervisor", p.Supervisor, p.ClientCA, c, "system:regente-supervisor", m},
		{"serving-etcd", p.EtcdServer, p.EtcdCA, x509.ExtKeyUsageServerAuth, "etcd", nil},
		{"client-etcd", p.EtcdClient, p.EtcdCA, c, "etcd-client", nil},
	}
}

func loadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := LoadCertificate(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifyLeaf checks l chains to its CA for its usage at now, and that its key
// file matches.
func verifyLeaf(t *testing.T, l leafCase, now time.Time) *x509.Certificate {
	t.Helper()
	if _, err := tls.LoadX509KeyPair(l.kp.Cert, l.kp.Key); err != nil {
		t.Errorf("%s: key pair: %v", l.name, err)
	}
	cert := loadCert(t, l.kp.Cert)
	roots := x509.NewCertPool()
	roots.AddCert(loadCert(t, l.ca.Cert))
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{l.usage}}
	if _, err := cert.Verify(opts); err != nil {
		t.Errorf("%s: verify: %v", l.name, err)
	}
	return cert
}

func TestEnsureFresh(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string) error
	}{
		{"missing dir", func(string) error { return nil }},
		{"loose existing dir", func(dir string) error { return os.MkdirAll(dir, 0o755) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "server", "tls")
			if err := tt.setup(dir); err != nil {
				t.Fatal(err)
			}
			p := mustEnsure(t, testOptions(dir, t0))

			if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
			}
			for name, st := range snapshot(t, dir) {
				want := fs.FileMode(0o644)
				if strings.HasSuffix(name, ".key") {
					want = 0o600
				}
				if st.mode.Perm() != want {
					t.Errorf("%s mode = %v, want %v", name, st.mode.Perm(), want)
				}
			}
			if len(p.Changed) != 14 || p.Changed[0] != "created server-ca" || p.Changed[4] != "created service.key" {
				t.Errorf("Changed = %q", p.Changed)
			}

			for _, name := range []string{"server-ca", "client-ca", "request-header-ca", "etcd-ca"} {
				ca := loadCert(t, filepath.Join(dir, name+".crt"))
				wantCN := "regente-" + name + "@1740830400"
				if !ca.IsCA || ca.Subject.CommonName != wantCN || !ca.NotAfter.Equal(t0.Add(10*365*24*time.Hour)) ||
					ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign|x509.KeyUsageDigitalSignature {
					t.Errorf("%s: IsCA=%v CN=%q NotAfter=%v KeyUsage=%v", name, ca.IsCA, ca.Subject.CommonName, ca.NotAfter, ca.KeyUsage)
				}
			}

			b, err := os.ReadFile(p.ServiceAccountKey)
			if err != nil {
				t.Fatal(err)
			}
			if k, err := parseKey(b); err != nil || k.Curve != elliptic.P256() {
				t.Errorf("service.key: %v", err)
			}

			for _, l := range leavesOf(p) {
				cert := verifyLeaf(t, l, t0)
				if cert.Subject.CommonName != l.cn || !slices.Equal(cert.Subject.Organization, l.orgs) {
					t.Errorf("%s: subject = %v", l.name, cert.Subject)
				}
				if !cert.NotBefore.Equal(t0.Add(-time.Hour)) || !cert.NotAfter.Equal(t0.Add(365*24*time.Hour)) {
					t.Errorf("%s: validity %v..%v", l.name, cert.NotBefore, cert.NotAfter)
				}
				if n := cert.SerialNumber; n.Sign() <= 0 || n.BitLen() > 128 {
					t.Errorf("%s: serial %v", l.name, n)
				}
				// A cert must not pass for the other usage, except etcd's,
				// which its peers also dial out with.
				other := x509.ExtKeyUsageServerAuth
				if l.usage == other {
					other = x509.ExtKeyUsageClientAuth
				}
				if l.name == "serving-etcd" {
					continue
				}
				roots := x509.NewCertPool()
				roots.AddCert(loadCert(t, l.ca.Cert))
				if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{other}}); err == nil {
					t.Errorf("%s: verified for %v", l.name, other)
				}
			}
			serving := loadCert(t, p.APIServerServing.Cert)
			for _, host := range []string{"kubernetes.default.svc.cluster.local", "node1", "10.43.0.1", "::1"} {
				if err := serving.VerifyHostname(host); err != nil {
					t.Errorf("serving cert: %v", err)
				}
			}
			// Clients must not be accepted by a CA that did not sign them.
			roots := x509.NewCertPool()
			roots.AddCert(loadCert(t, p.ClientCA.Cert))
			if _, err := loadCert(t, p.AuthProxy.Cert).Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
				t.Error("auth-proxy cert verified against client-ca")
			}
		})
	}
}

func TestEnsureIdempotent(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir, t0)
	o.ExtraSANs = []string{"api.example.com", "10.0.0.5"}
	first := mustEnsure(t, o)
	before := snapshot(t, dir)
	second := mustEnsure(t, o)
	if d := diff(before, snapshot(t, dir)); len(d) > 0 {
		t.Errorf("second Ensure changed %q", d)
	}
	if len(second.Changed) != 0 {
		t.Errorf("second Changed = %q", second.Changed)
	}
	if first.Admin != second.Admin || first.ServiceAccountKey != second.ServiceAccountKey {
		t.Errorf("paths differ: %+v vs %+v", first, second)
	}
}

func TestEnsureRenewal(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name    string
		advance time.Duration
		reason  string // "" = nothing renewed
	}{
		{"plenty left", 200 * day, ""},
		{"just over 90 days left", 274 * day, ""},
		{"inside renewal window", 300 * day, "expires in 65 days"},
		{"expired", 400 * day, "expired 35 days ago"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := mustEnsure(t, testOptions(dir, t0))
			before := snapshot(t, dir)
			now := t0.Add(tt.advance)
			p2 := mustEnsure(t, testOptions(dir, now))

			var wantChanged, wantFiles []string
			if tt.reason != "" {
				for _, l := range leavesOf(p) {
					wantChanged = append(wantChanged, "renewed "+l.name+": "+tt.reason)
					wantFiles = append(wantFiles, l.name+".crt")
				}
				slices.Sort(wantFiles)
			}
			if !slices.Equal(p2.Changed, wantChanged) {
				t.Errorf("Changed = %q, want %q", p2.Changed, wantChanged)
			}
			// Keys, CAs and service.key stay; only leaf certs move.
			if got := diff(before, snapshot(t, dir)); !slices.Equal(got, wantFiles) {
				t.Errorf("changed files = %q, want %q", got, wantFiles)
			}
			if tt.reason == "" {
				return
			}
			for _, l := range leavesOf(p2) {
				if c := verifyLeaf(t, l, now); !c.NotAfter.Equal(now.Add(365 * day)) {
					t.Errorf("%s: NotAfter = %v", l.name, c.NotAfter)
				}
			}
			if p3 := mustEnsure(t, testOptions(dir, now)); len(p3.Changed) != 0 {
				t.Errorf("Ensure after renewal changed %q", p3.Changed)
			}
		})
	}
}

func TestEnsureSANChange(t *testing.T) {
	tests := []struct {
		name          string
		before, after []string
		want          string
	}{
		{"added IP", nil, []string{"10.0.0.5"}, "re-issued serving-kube-apiserver: SANs changed (added 10.0.0.5)"},
		{"removed name", []string{"api.example.com"}, nil, "re-issued serving-kube-apiserver: SANs changed (removed api.example.com)"},
		{"replaced", []string{"a.example.com"}, []string{"b.example.com", "fd00::1"}, "re-issued serving-kube-apiserver: SANs changed (added b.example.com, fd00::1; removed a.example.com)"},
		{"case and order only", []string{"A.example.com", "10.0.0.5"}, []string{"10.0.0.5", "a.example.com"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			o := testOptions(dir, t0)
			o.ExtraSANs = tt.before
			mustEnsure(t, o)
			before := snapshot(t, dir)
			o.ExtraSANs = tt.after
			p := mustEnsure(t, o)

			var wantChanged, wantFiles []string
			if tt.want != "" {
				wantChanged, wantFiles = []string{tt.want}, []string{"serving-kube-apiserver.crt"}
			}
			if !slices.Equal(p.Changed, wantChanged) {
				t.Errorf("Changed = %q, want %q", p.Changed, wantChanged)
			}
			if got := diff(before, snapshot(t, dir)); !slices.Equal(got, wantFiles) {
				t.Errorf("changed files = %q, want %q", got, wantFiles)
			}
			dns, ips := ServingSANs(o)
			c := verifyLeaf(t, leavesOf(p)[0], t0)
			if !slices.Equal(c.DNSNames, dns) || !slices.Equal(ipStrings(c.IPAddresses), ipStrings(ips)) {
				t.Errorf("SANs = %q %q, want %q %q", c.DNSNames, c.IPAddresses, dns, ips)
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func newKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func TestEnsureRefusesBrokenCA(t *testing.T) {
	tests := []struct {
		name    string
		file    string // the file the error must name
		now     time.Time
		breakIt func(t *testing.T, path string)
	}{
		{"garbage CA key", "server-ca.key", t0, func(t *testing.T, p string) { writeFile(t, p, []byte("garbage")) }},
		{"garbage CA cert", "client-ca.crt", t0, func(t *testing.T, p string) { writeFile(t, p, []byte("garbage")) }},
		{"truncated CA cert", "request-header-ca.crt", t0, func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			writeFile(t, p, b[:len(b)/2])
		}},
		{"CA key missing", "request-header-ca.key", t0, func(t *testing.T, p string) { os.Remove(p) }},
		{"CA cert missing", "server-ca.crt", t0, func(t *testing.T, p string) { os.Remove(p) }},
		{"CA key from elsewhere", "client-ca.key", t0, func(t *testing.T, p string) { writeFile(t, p, newKeyPEM(t)) }},
		{"CA expired", "server-ca.crt", t0.Add(11 * 365 * 24 * time.Hour), func(*testing.T, string) {}},
		{"garbage service key", "service.key", t0, func(t *testing.T, p string) { writeFile(t, p, []byte("garbage")) }},
		{"empty service key", "service.key", t0, func(t *testing.T, p string) { writeFile(t, p, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustEnsure(t, testOptions(dir, t0))
			path := filepath.Join(dir, tt.file)
			tt.breakIt(t, path)
			before := snapshot(t, dir)

			_, err := Ensure(testOptions(dir, tt.now))
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("Ensure error = %v, want one naming %s", err, path)
			}
			if d := diff(before, snapshot(t, dir)); len(d) > 0 {
				t.Errorf("Ensure touched %q after refusing", d)
			}
		})
	}
}

func TestEnsureRepairsLeaf(t *testing.T) {
	other := t.TempDir()
	mustEnsure(t, testOptions(other, t0))
	copyFrom := func(name string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(other, name))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, name), b)
		}
	}
	const crt, key = "client-admin.crt", "client-admin.key"
	tests := []struct {
		name      string
		setup     func(t *testing.T, dir string)
		want      string // prefix of the only Changed entry; "" = none
		keyReused bool
	}{
		{"garbage key", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, key), []byte("x")) }, "re-issued client-admin: parse key", false},
		{"key missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, key)) }, "re-issued client-admin: key missing", false},
		{"garbage cert", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, crt), []byte("x")) }, "re-issued client-admin: parse certificate", true},
		{"cert missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, crt)) }, "created client-admin", true},
		{"key does not match", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, key), newKeyPEM(t)) }, "re-issued client-admin: key does not match certificate", true},
		{"signed by another CA", func(t *testing.T, dir string) { copyFrom(crt)(t, dir); copyFrom(key)(t, dir) }, "re-issued client-admin: not signed by current client-ca", true},
		{"loose key mode fixed silently", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, key), 0o644) }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustEnsure(t, testOptions(dir, t0))
			tt.setup(t, dir)
			before := snapshot(t, dir)
			p := mustEnsure(t, testOptions(dir, t0))

			if tt.want == "" && len(p.Changed) != 0 ||
				tt.want != "" && (len(p.Changed) != 1 || !strings.HasPrefix(p.Changed[0], tt.want)) {
				t.Errorf("Changed = %q, want one entry starting %q", p.Changed, tt.want)
			}
			after := snapshot(t, dir)
			if (before[key].data == after[key].data) != tt.keyReused {
				t.Errorf("key reused = %v, want %v", !tt.keyReused, tt.keyReused)
			}
			if after[key].mode.Perm() != 0o600 {
				t.Errorf("key mode = %v", after[key].mode.Perm())
			}
			for _, n := range diff(before, after) {
				if n != crt && n != key {
					t.Errorf("unrelated file %s changed", n)
				}
			}
			verifyLeaf(t, leavesOf(p)[1], t0)
		})
	}
}

func TestCAHashAndLoadCertificate(t *testing.T) {
	dir := t.TempDir()
	p := mustEnsure(t, testOptions(dir, t0))
	b, err := os.ReadFile(p.ServerCA.Cert)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if h, err := CAHash(p.ServerCA.Cert); err != nil || h != hex.EncodeToString(sum[:]) {
		t.Errorf("CAHash = %q, %v", h, err)
	}
	if c := loadCert(t, p.ServerCA.Cert); !bytes.Contains(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})) {
		t.Error("LoadCertificate returned a different certificate")
	}
	missing := filepath.Join(dir, "nope.crt")
	if _, err := CAHash(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("CAHash(missing) = %v", err)
	}
	if _, err := LoadCertificate(p.ServerCA.Key); err == nil || !strings.Contains(err.Error(), p.ServerCA.Key) {
		t.Errorf("LoadCertificate(key file) = %v", err)
	}
}

func TestEnsureNodeIssuesKubeletCredentials(t *testing.T) {
	dir := t.TempDir()
	caDir, nodeDir := filepath.Join(dir, "server"), filepath.Join(dir, "agent")
	if _, err := Ensure(Options{Dir: caDir, Hostname: "h", ClusterDomain: "cluster.local"}); err != nil {
		t.Fatal(err)
	}
	n, err := EnsureNode(NodeOptions{CADir: caDir, Dir: nodeDir, NodeName: "node-1", NodeIPs: []net.IP{net.ParseIP("10.0.0.7")}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := LoadCertificate(n.KubeletClient.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if client.Subject.CommonName != "system:node:node-1" || len(client.Subject.Organization) != 1 || client.Subject.Organization[0] != "system:nodes" {
		t.Fatalf("kubelet client subject %v", client.Subject)
	}
	serving, _ := LoadCertificate(n.KubeletServing.Cert)
	if err := serving.VerifyHostname("10.0.0.7"); err != nil {
		t.Fatalf("serving cert lacks the node IP: %v", err)
	}
	ca, _ := LoadCertificate(n.ServerCA)
	if err := serving.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("serving cert not signed by the server CA: %v", err)
	}
	again, err := EnsureNode(NodeOptions{CADir: caDir, Dir: nodeDir, NodeName: "node-1", NodeIPs: []net.IP{net.ParseIP("10.0.0.7")}})
	if err != nil || len(again.Changed) != 0 {
		t.Fatalf("second EnsureNode changed %v (%v)", again.Changed, err)
	}
}
