package version

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Version is regente's version, set by hack/build with -ldflags -X.
// It is a variable only because the linker can set nothing else.
var Version = "v0.0.0-dev"

// Info is what `regente --version` prints.
type Info struct {
	Regente, Kubernetes, Kine, Go string
}

// Get reads the linked module versions from the build information.
func Get() Info {
	info := Info{Regente: Version, Kubernetes: "unknown", Kine: "unknown", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	for _, dep := range bi.Deps {
		switch dep.Path {
		case "k8s.io/kubernetes":
			info.Kubernetes = dep.Version
		case "github.com/k3s-io/kine":
			info.Kine = dep.Version
		}
	}
	return info
}

// Print writes the version lines.
func Print(w io.Writer) {
	i := Get()
	fmt.Fprintf(w, "regente version %s\nkubernetes %s\nkine %s\ngo %s\n", i.Regente, i.Kubernetes, i.Kine, i.Go)
}
