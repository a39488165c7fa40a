// Package containerd is the hidden `regente containerd` verb: upstream
// containerd v2, linked with its built-in plugins (CRI among them). The
// agent's runtime component starts it as a child process by re-executing
// regente, so containerd and its shims keep running when regente restarts.
package containerd
