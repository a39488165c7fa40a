package kubectl

import (
	"context"
	"io"
	"os"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

// DefaultKubeconfig is where `regente server` writes the admin kubeconfig.
const DefaultKubeconfig = "/etc/regente/regente.yaml"

// Run runs kubectl with args (without the program name). It does not return
// on error: kubectl prints the error its own way and exits non-zero.
func Run(_ context.Context, args []string, _, _ io.Writer) error {
	if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" && !hasKubeconfigFlag(args) {
		if f, err := os.Open(DefaultKubeconfig); err == nil {
			f.Close()
			_ = os.Setenv(clientcmd.RecommendedConfigPathEnvVar, DefaultKubeconfig)
		}
	}
	// kubectl reads os.Args itself (plugin lookup, completion), so it must
	// see the argv it would have as its own binary.
	os.Args = append([]string{"kubectl"}, args...)
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
	return nil
}

func hasKubeconfigFlag(args []string) bool {
	for _, a := range args {
		if a == "--kubeconfig" || strings.HasPrefix(a, "--kubeconfig=") {
			return true
		}
	}
	return false
}
