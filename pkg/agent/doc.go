// Package agent is the ONE wiring list of a node: which components run, in
// which order. `regente server` appends it to its own list unless
// --disable-agent. Joining a remote server (regente agent) is not built
// yet: the credentials come from the server's own CAs.
package agent
