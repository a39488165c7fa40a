// Package certexpiry warns, as a Warning event on the server's Node and a
// log line, about every certificate of the server that ends within 30
// days. Leaf certificates are renewed at each start once fewer than 90
// days remain, so a warning means the server has not restarted for two
// months or a CA is ending; the event says which file and what to run.
//
// It reads certificates and records events; it must not renew or replace
// anything (pkg/certs and `regente certificate` do).
package certexpiry
