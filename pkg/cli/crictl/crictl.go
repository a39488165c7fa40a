package crictl

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"k8s.io/klog/v2"

	"regente.io/regente/pkg/cli/ctr"
	"regente.io/regente/pkg/payload"
	"regente.io/regente/pkg/payload/embedded"
)

// DefaultDataDir is where the payload is unpacked unless REGENTE_DATA_DIR
// names the node's --data-dir.
const DefaultDataDir = "/var/lib/regente"

// Run replaces this process with crictl, args without the program name.
// It returns only on error.
func Run(args []string) error {
	dataDir := os.Getenv("REGENTE_DATA_DIR")
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	dir, err := payload.Ensure(klog.Background(), embedded.Archive(), dataDir)
	if err != nil {
		return fmt.Errorf("unpack crictl under %s (set REGENTE_DATA_DIR to the node's --data-dir): %w", dataDir, err)
	}
	env := os.Environ()
	// crictl reads these itself; its flags still win over them.
	for _, v := range []string{"CONTAINER_RUNTIME_ENDPOINT", "IMAGE_SERVICE_ENDPOINT"} {
		if os.Getenv(v) == "" {
			env = append(env, v+"=unix://"+ctr.Socket)
		}
	}
	bin := filepath.Join(dir, "bin", "crictl")
	return syscall.Exec(bin, append([]string{"crictl"}, args...), env)
}
