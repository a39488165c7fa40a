package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/server"
)

// Run runs `regente server args...`.
func Run(ctx context.Context, args []string, stdout, _ io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" {
			fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
			config.NewServer().AddFlags(fs)
			fmt.Fprintf(stdout, "Usage: regente server [flags]\n\nRuns the Kubernetes control plane and, unless --disable-agent, a node on this machine.\n"+
				"Every flag may also be set in /etc/regente/config.yaml (key = flag name) or as REGENTE_<FLAG_NAME>.\n\nFlags:\n%s", fs.FlagUsages())
			return nil
		}
	}
	cfg, err := config.LoadServer(args, os.LookupEnv)
	if err != nil {
		return err
	}
	if err := cfg.Complete(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid options:\n%w", err)
	}
	if err := SetupLogging(cfg.Debug); err != nil {
		return err
	}
	logger := klog.Background().WithName("regente")
	for _, note := range cfg.Notes() {
		logger.Info("Config: "+note, "component", "config")
	}
	return server.Run(klog.NewContext(ctx, logger), cfg)
}

// SetupLogging configures klog, the logger every linked upstream component
// already uses, so regente has one log stream in one format.
func SetupLogging(debug bool) error {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	v := "0"
	if debug {
		v = "4"
	}
	return errors.Join(fs.Set("v", v), fs.Set("logtostderr", "true"))
}
