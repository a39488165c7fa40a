package certs

import (
	"errors"
	"net"
	"time"
)

// NodeOptions says which node credentials to issue from the cluster CAs.
type NodeOptions struct {
	CADir    string // the server's TLS dir, holding server-ca and client-ca
	Dir      string // where the node's files go, e.g. <data-dir>/agent/tls
	NodeName string
	NodeIPs  []net.IP
	Now      func() time.Time // nil = time.Now
}

// NodePKI are the file paths of a node's credentials.
type NodePKI struct {
	ServerCA       string  // trusts the apiserver's serving cert
	ClientCA       string  // the kubelet's clientCAFile: who may call the kubelet API
	KubeletClient  KeyPair // "client-kubelet": CN=system:node:<name>, O=system:nodes
	KubeletServing KeyPair // "serving-kubelet": the kubelet API's serving cert, by the server CA
	KubeProxy      KeyPair // "client-kube-proxy": CN=system:kube-proxy
	Flannel        KeyPair // "client-flannel": CN=FlannelUser
	Changed        []string
}

// FlannelUser is the identity flannel uses on every node. It must read all
// nodes to route to their pod CIDRs, which the node authorizer denies a
// kubelet's identity; the server binds it to a ClusterRole for that.
const FlannelUser = "system:regente-flannel"

// EnsureNode creates or renews a node's kubelet, kube-proxy and flannel
// credentials with the same reuse and renewal rules as Ensure. The CAs
// must exist.
func EnsureNode(o NodeOptions) (*NodePKI, error) {
	if o.CADir == "" || o.Dir == "" || o.NodeName == "" {
		return nil, errors.New("ensure node credentials: CADir, Dir and NodeName are required")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if err := ensureDir(o.Dir); err != nil {
		return nil, err
	}
	e := &ensurer{dir: o.CADir, now: now()}
	serverCA, err := e.ensureCA("server-ca")
	if err != nil {
		return nil, err
	}
	clientCA, err := e.ensureCA("client-ca")
	if err != nil {
		return nil, err
	}
	var leaves []leafSpec
	for _, role := range NodeRoles {
		l, err := nodeLeaf(role, o.NodeName, o.NodeIPs, serverCA, clientCA)
		if err != nil {
			return nil, err
		}
		l.dir = o.Dir
		leaves = append(leaves, l)
	}
	for _, l := range leaves {
		if err := e.ensureLeaf(l); err != nil {
			return nil, err
		}
	}
	files := NodeFiles(o.CADir, o.Dir)
	files.Changed = e.changed
	return &files, nil
}

// NodeFiles names a node's credential files: the CA certificates in
// caDir (the server's TLS dir on a server, the node's own on an agent,
// where the join writes them) and the node's key pairs in dir. The names
// are known before the files exist, so components are configured with
// them up front.
func NodeFiles(caDir, dir string) NodePKI {
	return NodePKI{
		ServerCA:       pair(caDir, "server-ca").Cert,
		ClientCA:       pair(caDir, "client-ca").Cert,
		KubeletClient:  pair(dir, string(RoleKubeletClient)),
		KubeletServing: pair(dir, string(RoleKubeletServing)),
		KubeProxy:      pair(dir, string(RoleKubeProxy)),
		Flannel:        pair(dir, string(RoleFlannel)),
	}
}
