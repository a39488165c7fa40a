// Package secretsencrypt owns the API server's encryption configuration
// for Secrets (<data-dir>/server/cred/encryption-config.json, 0600) and the
// rotation stage beside it (encryption-state.json): what k3s users drive
// with `secrets-encrypt`. The file is upstream's EncryptionConfiguration,
// with one key provider (aescbc or secretbox) and identity; the API server
// reloads it on its own (--encryption-provider-config-automatic-reload),
// and reports the hash of what it loaded in its metrics, which is how a
// change is known to be in effect before the next step relies on it. A
// Session is one run of changes under the file's lock, applied live when
// the server runs.
//
// It encrypts nothing itself: the API server does, on every write, and
// Reencrypt only asks it to rewrite every Secret.
package secretsencrypt
