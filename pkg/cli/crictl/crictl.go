package crictl

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"k8s.io/klog/v2"

	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/payload"
	"regente.io/regente/pkg/payload/embedded"
)

// Run replaces this process with crictl, args without the program name.
// The node's data and run dirs come from the config file and REGENTE_*
// variables, as for every verb; the command line is crictl's own. It
// returns only on error.
func Run(_ context.Context, args []string, _, _ io.Writer) error {
	dirs, err := config.LoadDirs("crictl", os.LookupEnv)
	if err != nil {
		return err
	}
	dir, err := payload.Ensure(klog.Background(), embedded.Archive(), dirs.DataDir)
	if err != nil {
		return fmt.Errorf("unpack crictl under %s (set data-dir in the config file, or REGENTE_DATA_DIR, to the node's): %w", dirs.DataDir, err)
	}
	env := os.Environ()
	// crictl reads these itself; its flags still win over them.
	for _, v := range []string{"CONTAINER_RUNTIME_ENDPOINT", "IMAGE_SERVICE_ENDPOINT"} {
		if os.Getenv(v) == "" {
			env = append(env, v+"=unix://"+dirs.Layout().Run.ContainerdSocket)
		}
	}
	bin := filepath.Join(dir, "bin", "crictl")
	return syscall.Exec(bin, append([]string{"crictl"}, args...), env)
}
