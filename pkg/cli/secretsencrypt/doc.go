// Package secretsencrypt is the `regente secrets-encrypt` verb: status,
// enable, disable, prepare, rotate, reencrypt and rotate-keys, run on a
// server. Each step writes the encryption configuration
// (pkg/secretsencrypt) and, when the server runs, waits until its API
// server has loaded it before saying it is done, so the next step never
// relies on a key the API server does not have yet.
package secretsencrypt
