package ctr

import (
	"context"
	"io"
	"os"

	"github.com/containerd/containerd/v2/cmd/ctr/app"

	"regente.io/regente/pkg/config"
)

// Run runs ctr with args (without the program name), pointed at the
// containerd of the node whose run dir the config file or REGENTE_RUN_DIR
// names.
func Run(ctx context.Context, args []string, _, _ io.Writer) error {
	// ctr reads these itself; flags still win over them.
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		dirs, err := config.LoadDirs("ctr", os.LookupEnv)
		if err != nil {
			return err
		}
		_ = os.Setenv("CONTAINERD_ADDRESS", dirs.Layout().Run.ContainerdSocket)
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		_ = os.Setenv("CONTAINERD_NAMESPACE", "k8s.io")
	}
	return app.New().Run(ctx, append([]string{"ctr"}, args...))
}
