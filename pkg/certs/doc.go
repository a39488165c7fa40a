// Package certs owns the cluster PKI under <data-dir>/server/tls: the three
// cluster CAs (server, client, request-header), the service-account signing
// key, and the leaf certificates the control plane components present; and
// the node's certificates under <data-dir>/agent/tls, issued from those CAs
// on a server (EnsureNode) or through the join (Signer, NodeCSRs,
// WriteJoinedNode). RotateNodeLeaves, RotateCA, Inventory and CertInfo.Status are `regente certificate`'s.
//
// Ensure is the only writer of the server's PKI at start. It creates what is missing, reuses what is still
// valid and re-issues leaf certificates that are expiring or no longer match
// what the server needs, so it is safe to call on every start.
//
// The package must not replace a CA or the service-account key whose files
// exist but are unusable: a new CA invalidates every credential it signed and
// a new SA key invalidates every service-account token, so that decision is
// left to a human. It must not write kubeconfigs, start processes or talk to
// the API server; callers take the returned paths and do that themselves.
package certs
