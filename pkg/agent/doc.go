// Package agent is the ONE wiring list of a node: which components run, in
// which order. `regente server` appends Components to its own list unless
// --disable-agent, with credentials from the server's own CAs; `regente
// agent` (Run) first joins a remote server with a token, which issues the
// node's certificates, then runs the same list behind a local load
// balancer to the servers.
package agent
