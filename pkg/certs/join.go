package certs

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"

	"regente.io/regente/pkg/atomicfile"
)

// NodeRole names one certificate a node holds; it is also the file name
// of the pair in the node's TLS dir.
type NodeRole string

// The certificates a node needs.
const (
	RoleKubeletClient  NodeRole = "client-kubelet"
	RoleKubeletServing NodeRole = "serving-kubelet"
	RoleKubeProxy      NodeRole = "client-kube-proxy"
	RoleFlannel        NodeRole = "client-flannel"
)

// NodeRoles are all of them, in a stable order.
var NodeRoles = []NodeRole{RoleKubeletClient, RoleKubeletServing, RoleKubeProxy, RoleFlannel}

// nodeLeaf is the one definition of a node certificate: who it names and
// which CA signs it, whether the server issues it from its own files
// (EnsureNode) or for a joining node's CSR (Signer).
func nodeLeaf(role NodeRole, nodeName string, nodeIPs []net.IP, serverCA, clientCA *authority) (leafSpec, error) {
	client := x509.ExtKeyUsageClientAuth
	switch role {
	case RoleKubeletClient:
		return leafSpec{name: string(role), ca: clientCA, cn: "system:node:" + nodeName, orgs: []string{"system:nodes"}, usage: client}, nil
	case RoleKubeletServing:
		dns, ips := normalizeSANs([]string{nodeName, "localhost"}, append([]net.IP{net.IPv4(127, 0, 0, 1)}, nodeIPs...))
		return leafSpec{name: string(role), ca: serverCA, cn: nodeName, usage: x509.ExtKeyUsageServerAuth, dns: dns, ips: ips}, nil
	case RoleKubeProxy:
		return leafSpec{name: string(role), ca: clientCA, cn: "system:kube-proxy", usage: client}, nil
	case RoleFlannel:
		return leafSpec{name: string(role), ca: clientCA, cn: FlannelUser, usage: client}, nil
	}
	return leafSpec{}, fmt.Errorf("unknown node certificate %q", role)
}

// Signer issues node certificates for CSRs from the cluster CAs: the join
// service's half of a node's credentials.
type Signer struct {
	serverCA, clientCA *authority
	now                func() time.Time
}

// NewSigner loads the CAs in caDir, which must exist.
func NewSigner(caDir string) (*Signer, error) {
	e := &ensurer{dir: caDir, now: time.Now()}
	var cas [2]*authority
	for i, name := range []string{"server-ca", "client-ca"} {
		if ok, err := exists(pair(caDir, name).Cert); err != nil || !ok {
			return nil, fmt.Errorf("load CA %s from %s: missing (%v)", name, caDir, err)
		}
		ca, err := e.ensureCA(name)
		if err != nil {
			return nil, err
		}
		cas[i] = ca
	}
	return &Signer{serverCA: cas[0], clientCA: cas[1], now: time.Now}, nil
}

// Sign verifies csrPEM and returns the PEM certificate for role, naming
// nodeName. Only the CSR's public key is used: the subject and SANs come
// from the role, so a CSR cannot ask for another identity.
func (s *Signer) Sign(role NodeRole, nodeName string, nodeIPs []net.IP, csrPEM []byte) ([]byte, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%s: not a PEM certificate request", role)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: parse certificate request: %w", role, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%s: certificate request signature: %w", role, err)
	}
	spec, err := nodeLeaf(role, nodeName, nodeIPs, s.serverCA, s.clientCA)
	if err != nil {
		return nil, err
	}
	cert, err := sign(spec.name, spec.template(s.now()), csr.PublicKey, spec.ca.cert, spec.ca.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), nil
}

// ServerCAPEM and ClientCAPEM are the CA certificates a node trusts.
func (s *Signer) ServerCAPEM() []byte { return certPEM(s.serverCA.cert) }

// ClientCAPEM is the CA of client certificates, the kubelet's clientCAFile.
func (s *Signer) ClientCAPEM() []byte { return certPEM(s.clientCA.cert) }

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// NodeCSRs returns a CSR for every node role, from the keys in dir; a
// missing or unreadable key is replaced. Keys never leave the node.
func NodeCSRs(dir string) (map[NodeRole][]byte, error) {
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	csrs := map[NodeRole][]byte{}
	for _, role := range NodeRoles {
		kp := pair(dir, string(role))
		key, err := loadKey(kp.Key)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				// An unreadable key is replaced: the certificate for it is
				// issued fresh by this join anyway.
				_ = os.Remove(kp.Key)
			}
			var kf atomicfile.File
			if key, kf, err = newKey(kp.Key); err != nil {
				return nil, err
			}
			if err := atomicfile.Write(kf); err != nil {
				return nil, err
			}
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: string(role)}}, key)
		if err != nil {
			return nil, fmt.Errorf("create certificate request for %s: %w", role, err)
		}
		csrs[role] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	return csrs, nil
}

// WriteJoinedNode stores what a join returned in dir: the CAs and one
// certificate per role, each checked against its key, and returns the
// paths as EnsureNode does.
func WriteJoinedNode(dir string, serverCA, clientCA []byte, issued map[NodeRole][]byte) (*NodePKI, error) {
	files := []atomicfile.File{
		{Path: pair(dir, "server-ca").Cert, Data: serverCA, Mode: 0o644},
		{Path: pair(dir, "client-ca").Cert, Data: clientCA, Mode: 0o644},
	}
	for _, role := range NodeRoles {
		kp := pair(dir, string(role))
		cert, err := parseCertificate(issued[role])
		if err != nil {
			return nil, fmt.Errorf("certificate %s from the server: %w", role, err)
		}
		key, err := loadKey(kp.Key)
		if err != nil {
			return nil, err
		}
		if !key.PublicKey.Equal(cert.PublicKey) {
			return nil, fmt.Errorf("certificate %s from the server is not for this node's key", role)
		}
		files = append(files, certFile(kp.Cert, cert))
	}
	if err := atomicfile.Write(files...); err != nil {
		return nil, err
	}
	pki := NodeFiles(dir, dir)
	return &pki, nil
}
