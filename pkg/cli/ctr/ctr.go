package ctr

import (
	"context"
	"os"

	"github.com/containerd/containerd/v2/cmd/ctr/app"
)

// Socket is where the agent's containerd listens.
const Socket = "/run/regente/containerd/containerd.sock"

// Run runs ctr with args (without the program name).
func Run(ctx context.Context, args []string) error {
	// ctr reads these itself; flags still win over them.
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		os.Setenv("CONTAINERD_ADDRESS", Socket)
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		os.Setenv("CONTAINERD_NAMESPACE", "k8s.io")
	}
	return app.New().Run(ctx, append([]string{"ctr"}, args...))
}
