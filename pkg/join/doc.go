// Package join lets agents join a server, as k3s's do: the token, the
// server's token store (Tokens: the token files, the revoked list and
// rotation), the bootstrap tokens `regente token` manages
// (BootstrapTokens), the server's join endpoints, built with the store,
// and the agent's side of them.
//
// The token is K10<sha256 of the server CA file>::<credential>, where the
// credential is server:<secret> (the server's own secret, which servers and
// agents may use), node:<secret> (--agent-token: agents only) or a
// bootstrap token <id>.<secret> from `regente token create`, stored in
// kubeadm's Secret format in kube-system so its expiry and usages are
// upstream's.
//
// The endpoints live on the API server's own port, under /v1-regente/:
// GET cacerts returns the server CA unauthenticated, and the agent accepts
// it only if its hash matches the token's; POST join, over TLS pinned to
// that CA, presents the token, the node's name, its node password and one
// CSR per certificate it needs, and gets the certificates back (the keys
// never leave the node) with the cluster settings and the servers' URLs.
//
// The node password protects a node's name: the first join records a hash
// of it in a Secret in kube-system, and a later join under the same name
// must present the same password; deleting the Node deletes the Secret, so
// a re-installed machine can take the name again.
package join
