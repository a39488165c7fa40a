package certs

import (
	"regente.io/regente/pkg/atomicfile"

	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// renewWithin leaves a quarter of a leaf's lifetime to notice a failed
	// renewal before the certificate actually stops working.
	renewWithin = 90 * 24 * time.Hour
	// clockSkew backdates NotBefore so nodes whose clocks run slightly
	// behind the server still accept freshly issued certificates.
	clockSkew = time.Hour
)

// Options says what PKI the server needs.
type Options struct {
	Dir           string           // e.g. /var/lib/regente/server/tls; created 0700 if missing
	Hostname      string           // node hostname, a SAN of the serving cert
	NodeIPs       []net.IP         // node IPs, SANs of the serving cert
	ServiceIP     net.IP           // first usable IP of the service CIDR (the `kubernetes` Service), a SAN
	ClusterDomain string           // e.g. cluster.local; empty omits kubernetes.default.svc.<domain>
	ExtraSANs     []string         // --tls-san values: an IP if net.ParseIP accepts it, else a DNS name
	Now           func() time.Time // nil = time.Now; tests inject
}

// KeyPair holds the file paths of a certificate and its private key.
type KeyPair struct{ Cert, Key string }

// PKI holds the paths of everything Ensure manages.
type PKI struct {
	Dir               string
	ServerCA          KeyPair // "server-ca": signs serving certs (apiserver; later kubelets)
	ClientCA          KeyPair // "client-ca": signs every client cert
	RequestHeaderCA   KeyPair // "request-header-ca": signs the front-proxy client cert
	ServiceAccountKey string  // "service.key": SA token signing key; also valid as --service-account-key-file
	APIServerServing  KeyPair // "serving-kube-apiserver"
	Admin             KeyPair // "client-admin": CN=system:admin, O=system:masters
	ControllerManager KeyPair // "client-controller": CN=system:kube-controller-manager
	Scheduler         KeyPair // "client-scheduler": CN=system:kube-scheduler
	APIServerKubelet  KeyPair // "client-kube-apiserver": apiserver -> kubelet
	AuthProxy         KeyPair // "client-auth-proxy": signed by RequestHeaderCA
	Supervisor        KeyPair // "client-supervisor": regente's own controllers
	EtcdCA            KeyPair // "etcd-ca": signs embedded etcd's serving, peer and client certs
	EtcdServer        KeyPair // "serving-etcd": etcd's client and peer listeners (server and client auth)
	EtcdClient        KeyPair // "client-etcd": the apiserver and regente to etcd
	// ServerCASigner and ClientCASigner hold only the current CA
	// certificate, for the controller-manager's CSR signers, which refuse
	// a bundle: during a CA transition (RotateCA) server-ca.crt and
	// client-ca.crt also hold the CA they replaced.
	ServerCASigner, ClientCASigner string
	// Changed lists, for logging, what this call created or re-issued.
	Changed []string
}

// ServingSANs returns the apiserver serving cert's SANs, sorted and
// de-duplicated. DNS names are lower-cased (matching is case-insensitive) and
// IPv4-mapped IPv6 addresses are folded into IPv4 so equal IPs compare equal.
func ServingSANs(o Options) (dnsNames []string, ips []net.IP) {
	dnsNames = []string{o.Hostname, "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"}
	if d := strings.Trim(o.ClusterDomain, "."); d != "" {
		dnsNames = append(dnsNames, "kubernetes.default.svc."+d)
	}
	ips = append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, o.NodeIPs...)
	ips = append(ips, o.ServiceIP)
	for _, s := range o.ExtraSANs {
		s = strings.TrimSpace(s)
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, s)
		}
	}
	return normalizeSANs(dnsNames, ips)
}

func normalizeSANs(dns []string, ips []net.IP) ([]string, []net.IP) {
	var names []string
	for _, n := range dns {
		if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var addrs []netip.Addr
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, a.Unmap())
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	out := make([]net.IP, len(addrs))
	for i, a := range addrs {
		out[i] = a.AsSlice()
	}
	return slices.Compact(names), out
}

// authority is a loaded CA.
type authority struct {
	name string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// cross is this CA's certificate signed by the CA it replaced (see
	// RotateCA), or nil. Leaves it signs carry it as an intermediate, so
	// that peers who still trust only the old CA verify them.
	cross *x509.Certificate
}

// leafSpec describes one leaf certificate Ensure maintains.
type leafSpec struct {
	dir   string // where the pair goes; empty means the ensurer's dir
	name  string
	ca    *authority
	cn    string
	orgs  []string
	usage x509.ExtKeyUsage
	// alsoClient adds client auth to a serving cert: etcd peers dial each
	// other with the certificate they serve with.
	alsoClient bool
	dns        []string
	ips        []net.IP
}

// template is the certificate s describes, valid from now.
func (s leafSpec) template(now time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(leafValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           s.usages(),
		BasicConstraintsValid: true,
		DNSNames:              s.dns,
		IPAddresses:           s.ips,
	}
}

func (s leafSpec) usages() []x509.ExtKeyUsage {
	if s.alsoClient {
		return []x509.ExtKeyUsage{s.usage, x509.ExtKeyUsageClientAuth}
	}
	return []x509.ExtKeyUsage{s.usage}
}

// ensurer carries one Ensure run; now is read once so every decision and
// every certificate in a run uses the same instant.
type ensurer struct {
	dir     string
	now     time.Time
	changed []string
	// allowExpiredCA loads a CA past its end, for RotateCA to replace.
	allowExpiredCA bool
}

func pair(dir, name string) KeyPair {
	return KeyPair{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
}

// Layout returns the file paths of the PKI under dir without touching the
// disk, so components can be configured before Ensure writes anything.
func Layout(dir string) *PKI {
	return &PKI{
		Dir:               dir,
		ServerCA:          pair(dir, "server-ca"),
		ClientCA:          pair(dir, "client-ca"),
		RequestHeaderCA:   pair(dir, "request-header-ca"),
		ServiceAccountKey: filepath.Join(dir, "service.key"),
		APIServerServing:  pair(dir, "serving-kube-apiserver"),
		Admin:             pair(dir, "client-admin"),
		ControllerManager: pair(dir, "client-controller"),
		Scheduler:         pair(dir, "client-scheduler"),
		APIServerKubelet:  pair(dir, "client-kube-apiserver"),
		AuthProxy:         pair(dir, "client-auth-proxy"),
		Supervisor:        pair(dir, "client-supervisor"),
		EtcdCA:            pair(dir, "etcd-ca"),
		EtcdServer:        pair(dir, "serving-etcd"),
		EtcdClient:        pair(dir, "client-etcd"),
		ServerCASigner:    filepath.Join(dir, "server-ca-signer.crt"),
		ClientCASigner:    filepath.Join(dir, "client-ca-signer.crt"),
	}
}

// Ensure creates what is missing, reuses what is valid and re-issues leaf
// certificates that must change. It returns the file paths.
func Ensure(o Options) (*PKI, error) {
	if o.Dir == "" {
		return nil, errors.New("ensure PKI: Options.Dir is empty")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if err := ensureDir(o.Dir); err != nil {
		return nil, err
	}
	e := &ensurer{dir: o.Dir, now: now()}
	p := Layout(o.Dir)
	var cas [4]*authority
	for i, name := range []string{"server-ca", "client-ca", "request-header-ca", "etcd-ca"} {
		ca, err := e.ensureCA(name)
		if err != nil {
			return nil, err
		}
		cas[i] = ca
	}
	serverCA, clientCA, rhCA, etcdCA := cas[0], cas[1], cas[2], cas[3]
	if err := writeSigners(map[string]*authority{p.ServerCASigner: serverCA, p.ClientCASigner: clientCA}); err != nil {
		return nil, err
	}
	if err := e.ensureServiceKey(p.ServiceAccountKey); err != nil {
		return nil, err
	}
	dns, ips := ServingSANs(o)
	// etcd is reached only on loopback and the node's addresses, never
	// through --tls-san names.
	etcdDNS, etcdIPs := normalizeSANs([]string{o.Hostname, "localhost"}, append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, o.NodeIPs...))
	client, masters := x509.ExtKeyUsageClientAuth, []string{"system:masters"}
	leaves := []leafSpec{
		{name: "serving-kube-apiserver", ca: serverCA, cn: "kube-apiserver", usage: x509.ExtKeyUsageServerAuth, dns: dns, ips: ips},
		{name: "client-admin", ca: clientCA, cn: "system:admin", orgs: masters, usage: client},
		{name: "client-controller", ca: clientCA, cn: "system:kube-controller-manager", usage: client},
		{name: "client-scheduler", ca: clientCA, cn: "system:kube-scheduler", usage: client},
		{name: "client-kube-apiserver", ca: clientCA, cn: "system:kube-apiserver-kubelet-client", orgs: masters, usage: client},
		{name: "client-auth-proxy", ca: rhCA, cn: "system:auth-proxy", usage: client},
		{name: "client-supervisor", ca: clientCA, cn: "system:regente-supervisor", orgs: masters, usage: client},
		// Every server gets etcd certificates, so that --cluster-init can
		// later turn a SQLite server into the first etcd member.
		{name: "serving-etcd", ca: etcdCA, cn: "etcd", usage: x509.ExtKeyUsageServerAuth, alsoClient: true, dns: etcdDNS, ips: etcdIPs},
		{name: "client-etcd", ca: etcdCA, cn: "etcd-client", usage: client},
	}
	for _, l := range leaves {
		if err := e.ensureLeaf(l); err != nil {
			return nil, err
		}
	}
	p.Changed = e.changed
	return p, nil
}

// ensureCA loads the named CA, or creates it only when both files are absent.
// Anything else is an error: replacing a CA silently would invalidate every
// credential it signed, including those already handed to nodes.
func (e *ensurer) ensureCA(name string) (*authority, error) {
	kp := pair(e.dir, name)
	certExists, err := exists(kp.Cert)
	if err != nil {
		return nil, err
	}
	keyExists, err := exists(kp.Key)
	if err != nil {
		return nil, err
	}
	const hint = "restore it, or remove both CA files to create a new CA (invalidates every credential it signed)"
	switch {
	case !certExists && !keyExists:
		return e.createCA(name, kp)
	case !certExists:
		return nil, fmt.Errorf("CA %s: %s is missing but %s exists; %s", name, kp.Cert, kp.Key, hint)
	case !keyExists:
		return nil, fmt.Errorf("CA %s: %s is missing but %s exists; %s", name, kp.Key, kp.Cert, hint)
	}
	cert, err := LoadCertificate(kp.Cert)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w; %s", name, err, hint)
	}
	key, err := loadKey(kp.Key)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w; %s", name, err, hint)
	}
	switch {
	case !cert.IsCA:
		return nil, fmt.Errorf("CA %s: %s is not a CA certificate; %s", name, kp.Cert, hint)
	case !key.PublicKey.Equal(cert.PublicKey):
		return nil, fmt.Errorf("CA %s: key %s does not match %s; %s", name, kp.Key, kp.Cert, hint)
	case !e.now.Before(cert.NotAfter) && !e.allowExpiredCA:
		return nil, fmt.Errorf("CA %s: %s expired at %s: stop regente and run `regente certificate rotate-ca` (every node then joins again with the new token)", name, kp.Cert, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := fixKeyMode(kp.Key); err != nil {
		return nil, err
	}
	cross, err := loadCross(e.dir, name, cert, e.now)
	if err != nil {
		return nil, err
	}
	return &authority{name: name, cert: cert, key: key, cross: cross}, nil
}

func (e *ensurer) createCA(name string, kp KeyPair) (*authority, error) {
	key, kf, err := newKey(kp.Key)
	if err != nil {
		return nil, err
	}
	cert, err := sign(name, caTemplate(name, e.now), &key.PublicKey, nil, key)
	if err != nil {
		return nil, err
	}
	// Written together so a crash leaves at most a tiny window with only one
	// of the pair on disk, which the next run reports instead of papering over.
	if err := atomicfile.Write(kf, certFile(kp.Cert, cert)); err != nil {
		return nil, err
	}
	e.changed = append(e.changed, "created "+name)
	return &authority{name: name, cert: cert, key: key}, nil
}

// writeSigners writes each CA's certificate alone to its signer file,
// when the file does not hold it already.
func writeSigners(signers map[string]*authority) error {
	var files []atomicfile.File
	for path, ca := range signers {
		want := certPEM(ca.cert)
		if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, want) {
			continue
		}
		files = append(files, atomicfile.File{Path: path, Data: want, Mode: 0o644})
	}
	return atomicfile.Write(files...)
}

// caTemplate is a new CA certificate named after name and the time.
func caTemplate(name string, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: "regente-" + name + "@" + strconv.FormatInt(now.Unix(), 10)},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
}

// ensureServiceKey creates the service-account key once; an existing one is
// never replaced because that would invalidate every service-account token.
func (e *ensurer) ensureServiceKey(path string) error {
	_, err := loadKey(path)
	switch {
	case err == nil:
		return fixKeyMode(path)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("service account key: %w; restore it, or remove it to create a new one (invalidates every service account token)", err)
	}
	_, kf, err := newKey(path)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(kf); err != nil {
		return err
	}
	e.changed = append(e.changed, "created "+filepath.Base(path))
	return nil
}

func (e *ensurer) ensureLeaf(s leafSpec) error {
	dir := s.dir
	if dir == "" {
		dir = e.dir
	}
	kp := pair(dir, s.name)
	key, keyErr := loadKey(kp.Key)
	cert, certErr := LoadCertificate(kp.Cert)
	var change string
	switch {
	case errors.Is(certErr, fs.ErrNotExist):
		change = "created " + s.name
	case certErr != nil:
		change = fmt.Sprintf("re-issued %s: %v", s.name, certErr)
	case errors.Is(keyErr, fs.ErrNotExist):
		change = fmt.Sprintf("re-issued %s: key missing", s.name)
	case keyErr != nil:
		change = fmt.Sprintf("re-issued %s: %v", s.name, keyErr)
	default:
		change = e.staleness(s, cert, key)
	}
	if change == "" {
		return fixKeyMode(kp.Key)
	}
	var files []atomicfile.File
	if keyErr != nil {
		var kf atomicfile.File
		var err error
		if key, kf, err = newKey(kp.Key); err != nil {
			return err
		}
		files = append(files, kf)
	}
	cert, err := sign(s.name, s.template(e.now), &key.PublicKey, s.ca.cert, s.ca.key)
	if err != nil {
		return err
	}
	// Key before cert: a crash in between leaves a valid key that the next
	// run reuses for a fresh cert.
	if err := atomicfile.Write(append(files, certFile(kp.Cert, cert, s.ca.cross))...); err != nil {
		return err
	}
	e.changed = append(e.changed, change)
	return nil
}

// staleness returns why an existing, readable leaf must be re-issued, or ""
// if it can be reused.
func (e *ensurer) staleness(s leafSpec, cert *x509.Certificate, key *ecdsa.PrivateKey) string {
	reissue := func(why string, args ...any) string {
		return fmt.Sprintf("re-issued %s: %s", s.name, fmt.Sprintf(why, args...))
	}
	switch {
	case !key.PublicKey.Equal(cert.PublicKey):
		return reissue("key does not match certificate")
	case cert.CheckSignatureFrom(s.ca.cert) != nil:
		return reissue("not signed by current %s", s.ca.name)
	case cert.Subject.CommonName != s.cn || !slices.Equal(cert.Subject.Organization, s.orgs):
		return reissue("subject changed")
	case !slices.Equal(cert.ExtKeyUsage, s.usages()):
		return reissue("extended key usage changed")
	case e.now.Before(cert.NotBefore):
		// The clock went backwards past issuance; peers would reject it.
		return reissue("not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if diff := sanDiff(cert, s.dns, s.ips); diff != "" {
		return reissue("SANs changed (%s)", diff)
	}
	left := cert.NotAfter.Sub(e.now)
	switch {
	case left <= 0:
		return fmt.Sprintf("renewed %s: expired %d days ago", s.name, int(-left.Hours()/24))
	case left <= renewWithin:
		return fmt.Sprintf("renewed %s: expires in %d days", s.name, int(left.Hours()/24))
	}
	return ""
}

// sanDiff describes how the cert's SANs differ from the wanted ones, or
// returns "" if they are the same set.
func sanDiff(cert *x509.Certificate, dns []string, ips []net.IP) string {
	toSet := func(dns []string, ips []net.IP) []string {
		dns, ips = normalizeSANs(dns, ips)
		for _, ip := range ips {
			dns = append(dns, ip.String())
		}
		return dns
	}
	have, want := toSet(cert.DNSNames, cert.IPAddresses), toSet(dns, ips)
	var added, removed []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			added = append(added, w)
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			removed = append(removed, h)
		}
	}
	var parts []string
	if len(added) > 0 {
		parts = append(parts, "added "+strings.Join(added, ", "))
	}
	if len(removed) > 0 {
		parts = append(parts, "removed "+strings.Join(removed, ", "))
	}
	return strings.Join(parts, "; ")
}

// sign issues tmpl for the public key pub, signed by parent/parentKey
// (self-signed when parent is nil), with a random 128-bit serial.
func sign(name string, tmpl *x509.Certificate, pub any, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, error) {
	// Serials must be positive: draw from [0, 2^128-1) and add one.
	limit := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	serial, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generate serial for %s: %w", name, err)
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new %s: %w", name, err)
	}
	return cert, nil
}

// parseKey accepts SEC 1 ("EC PRIVATE KEY") and PKCS #8 ECDSA keys, so a key
// supplied by an operator in either common encoding is reused.
func parseKey(b []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		if ek, ok := k.(*ecdsa.PrivateKey); ok {
			return ek, nil
		}
		return nil, fmt.Errorf("%T is not an ECDSA key", k)
	}
	return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
}

func parseCertificate(b []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no CERTIFICATE PEM block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// certFile is a certificate's PEM file, followed by the intermediates
// that chain it to a CA a peer may still trust (nil ones are skipped).
func certFile(path string, cert *x509.Certificate, chain ...*x509.Certificate) atomicfile.File {
	data := certPEM(cert)
	for _, c := range chain {
		if c != nil {
			data = append(data, certPEM(c)...)
		}
	}
	return atomicfile.File{Path: path, Data: data, Mode: 0o644}
}

// newKey generates a P-256 key and its PEM file content for path.
func newKey(path string) (*ecdsa.PrivateKey, atomicfile.File, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, atomicfile.File{}, fmt.Errorf("generate key for %s: %w", path, err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, atomicfile.File{}, fmt.Errorf("marshal key for %s: %w", path, err)
	}
	return key, atomicfile.File{Path: path, Data: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), Mode: 0o600}, nil
}
