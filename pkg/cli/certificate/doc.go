// Package certificate is the `regente certificate` verb, as k3s users know
// it: check lists every certificate of the node with its expiry; rotate
// moves the leaf certificates aside so the next start issues new ones;
// rotate-ca replaces the cluster CAs with a cross-signed transition. The
// PKI itself is pkg/certs'; this package parses flags, refuses to change
// the files of a running regente, and prints.
package certificate
