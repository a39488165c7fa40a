package runtime

import (
	"os"
	"path/filepath"
	"strings"
)

// Runtime is a container runtime handler besides runc, as the CRI plugin
// names it: a RuntimeClass's handler.
type Runtime struct {
	Name string // the handler, e.g. "nvidia"
	Type string // containerd's runtime_type (its shim)
	// Binary is the OCI runtime the runc shim runs; "" for a runtime with
	// a shim of its own.
	Binary string
}

// knownRuntime is a runtime found by its program on the host.
type knownRuntime struct {
	name, program string
	// shim, when set, is the containerd shim the runtime needs on the
	// PATH, with runtime_type shimType; else the runc shim runs program.
	shim, shimType string
}

// knownRuntimes are the handlers k3s detects (NVIDIA's runtimes and
// crun) and gVisor's runsc, by the program each needs. The RuntimeClasses
// of the runtimes add-on name the same handlers.
var knownRuntimes = []knownRuntime{
	{name: "nvidia", program: "nvidia-container-runtime"},
	{name: "nvidia-experimental", program: "nvidia-container-runtime-experimental"},
	{name: "nvidia-cdi", program: "nvidia-container-runtime.cdi"},
	{name: "crun", program: "crun"},
	{name: "runsc", program: "runsc", shim: "containerd-shim-runsc-v1", shimType: "io.containerd.runsc.v1"},
}

// runtimeDirs are searched after the PATH: where NVIDIA's GPU operator
// installs its toolkit.
var runtimeDirs = []string{"/usr/local/nvidia/toolkit"}

// FindRuntimes returns the known runtimes whose programs are on path (a
// PATH value) or in runtimeDirs, in the order of knownRuntimes.
func FindRuntimes(path string) []Runtime {
	dirs := append(filepath.SplitList(path), runtimeDirs...)
	find := func(program string) string {
		for _, d := range dirs {
			if d == "" {
				continue
			}
			p := filepath.Join(d, program)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		return ""
	}
	var found []Runtime
	for _, k := range knownRuntimes {
		program := find(k.program)
		if program == "" {
			continue
		}
		r := Runtime{Name: k.name, Type: "io.containerd.runc.v2", Binary: program}
		if k.shim != "" {
			if find(k.shim) == "" {
				continue
			}
			r.Type, r.Binary = k.shimType, ""
		}
		found = append(found, r)
	}
	return found
}

// RuntimeNames lists the handlers of runtimes, for a log line.
func RuntimeNames(runtimes []Runtime) string {
	names := make([]string, len(runtimes))
	for i, r := range runtimes {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}
