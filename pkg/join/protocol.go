package join

import "regente.io/regente/pkg/certs"

// The endpoints, on the API server's port.
const (
	PathCACerts = "/v1-regente/cacerts"
	PathJoin    = "/v1-regente/join"
	// PathRotate replaces the server token's secret (regente token
	// rotate), authenticated by the current one.
	PathRotate = "/v1-regente/token-rotate"
)

// maxRequest bounds a join request's body: four CSRs and a few names.
const maxRequest = 64 << 10

// Request is what an agent posts to PathJoin.
type Request struct {
	// Token is the credential part of the join token (see Token.Credential).
	Token        string                    `json:"token"`
	NodeName     string                    `json:"nodeName"`
	NodePassword string                    `json:"nodePassword"`
	NodeIPs      []string                  `json:"nodeIPs"`
	CSRs         map[certs.NodeRole]string `json:"csrs"`
}

// Response is what the server returns for a Request.
type Response struct {
	ServerCA     string                    `json:"serverCA"`
	ClientCA     string                    `json:"clientCA"`
	Certificates map[certs.NodeRole]string `json:"certificates"`
	Cluster      Cluster                   `json:"cluster"`
	// Servers are the API servers' https URLs; the agent's load balancer
	// spreads over them.
	Servers []string `json:"servers"`
}

// Cluster is the settings every node must share with the servers.
type Cluster struct {
	ClusterCIDR    string `json:"clusterCIDR"`
	ServiceCIDR    string `json:"serviceCIDR"`
	ClusterDNS     string `json:"clusterDNS"`
	ClusterDomain  string `json:"clusterDomain"`
	FlannelBackend string `json:"flannelBackend"`
	// DisableNetworkPolicy is the server's --disable-network-policy.
	DisableNetworkPolicy bool `json:"disableNetworkPolicy"`
	// DisableKubeProxy is the server's --disable-kube-proxy.
	DisableKubeProxy bool `json:"disableKubeProxy"`
}

// RotateRequest is what `regente token rotate` posts to PathRotate.
type RotateRequest struct {
	// Token is the credential of the current server token.
	Token     string `json:"token"`
	NewSecret string `json:"newSecret"`
}

// RotateResponse holds the new full token.
type RotateResponse struct {
	Token string `json:"token"`
}

// RefusedHeader marks a refusal by the join service itself, as opposed to
// an answer from the API server's own filters (a server still applying its
// RBAC rules answers 403), which the agent retries.
const RefusedHeader = "X-Regente-Join-Refused"

// Error is the body of a refused request: a message that says why and
// what to do.
type Error struct {
	Message string `json:"message"`
}
