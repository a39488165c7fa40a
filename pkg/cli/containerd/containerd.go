package containerd

import (
	"context"

	"github.com/containerd/containerd/v2/cmd/containerd/command"

	// The plugins a stock containerd binary has (CRI, overlayfs, runc
	// runtime, ...): registration is what the library demands.
	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"
)

// Run runs containerd with argv (argv[0] is the program name).
func Run(ctx context.Context, argv []string) error {
	return command.App().Run(ctx, argv)
}
