// Package redact makes secrets in user input fit for logs and errors:
// the password of a datastore endpoint.
package redact
