// Package agent is the `regente agent` verb.
package agent

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/agent"
	"regente.io/regente/pkg/cli/server"
	"regente.io/regente/pkg/config"
)

// Run runs `regente agent args...`.
func Run(ctx context.Context, args []string, stdout, _ io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" {
			fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
			config.NewAgent().AddFlags(fs)
			fmt.Fprintf(stdout, "Usage: regente agent --server https://<server>:6443 --token <token> [flags]\n\n"+
				"Joins a server and runs a node: containerd, kubelet, kube-proxy and flannel.\n"+
				"Every flag may also be set in /etc/regente/config.yaml (key = flag name) or as REGENTE_<FLAG_NAME>;\n"+
				"REGENTE_URL and REGENTE_TOKEN are the server and the token.\n\nFlags:\n%s", fs.FlagUsages())
			return nil
		}
	}
	cfg, err := config.LoadAgent(args, os.LookupEnv)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid options:\n%w", err)
	}
	if err := server.SetupLogging(cfg.Debug); err != nil {
		return err
	}
	logger := klog.Background().WithName("regente")
	for _, note := range cfg.Notes() {
		logger.Info("Config: "+note, "component", "config")
	}
	return agent.Run(klog.NewContext(ctx, logger), cfg)
}
