// Package token is the `regente token` verb: create, list and delete the
// bootstrap tokens agents may join with (join.BootstrapTokens), and rotate
// the server token through the running server, as k3s's `token rotate`
// does (join.Tokens on the server's side).
package token

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/cli/kubectl"
	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/join"
)

const usage = `Usage:
  regente token create [--ttl 24h] [--description text]   print a new join token
  regente token list                                       list bootstrap tokens
  regente token delete <id>|<id>.<secret> ...              delete tokens
  regente token rotate [--new-token secret] [--token current] [--server url]
                                                           replace the server token; print the new one

Flags:
%s`

// Run runs `regente token args...`.
func Run(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := pflag.NewFlagSet("token", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	kubeconfigPath := fs.String("kubeconfig", kubectl.DefaultKubeconfig, "Admin kubeconfig")
	dirs := config.NewDirs()
	dirs.AddFlags(fs)
	ttl := fs.Duration("ttl", 24*time.Hour, "Lifetime of a created token; 0 never expires")
	description := fs.String("description", "", "Description of a created token")
	current := fs.String("token", "", "rotate: the current server token (default: the content of <data-dir>/server/token)")
	newToken := fs.String("new-token", "", "rotate: the new server token's secret (default: a generated one)")
	server := fs.String("server", "", "rotate: https URL of the server (default: the --kubeconfig's server)")
	if err := config.LoadVerb("token", fs, dirs, args, os.LookupEnv); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, usage, fs.FlagUsages())
			return nil
		}
		return err
	}
	paths := dirs.Layout().Server
	if fs.NArg() == 0 {
		return fmt.Errorf("missing subcommand: create, list, delete or rotate; run \"regente token --help\"")
	}
	if fs.Arg(0) == "rotate" {
		if fs.NArg() > 1 {
			return fmt.Errorf("token rotate takes only flags: give the new token with --new-token")
		}
		return rotate(ctx, stdout, os.Stderr, rotateOptions{
			kubeconfig: *kubeconfigPath, paths: paths, current: *current, newToken: *newToken, server: *server})
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfigPath)
	if err != nil {
		return fmt.Errorf("load the admin kubeconfig %s (set --kubeconfig): %w", *kubeconfigPath, err)
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	tokens := join.BootstrapTokens{Secrets: client.CoreV1().Secrets(metav1.NamespaceSystem)}
	switch verb, rest := fs.Arg(0), fs.Args()[1:]; verb {
	case "create":
		hash, err := caHash(paths.TLSDir, restCfg.TLSClientConfig.CAData)
		if err != nil {
			return err
		}
		token, err := tokens.Create(ctx, hash, *ttl, *description)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, token.String())
		return nil
	case "list":
		infos, err := tokens.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tEXPIRES\tUSAGES\tDESCRIPTION")
		for _, t := range infos {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, t.Expires, strings.Join(t.Usages, ","), t.Description)
		}
		return w.Flush()
	case "delete":
		if len(rest) == 0 {
			return errors.New("token delete: name the token IDs to delete (see regente token list)")
		}
		for _, id := range rest {
			if err := tokens.Delete(ctx, id); err != nil {
				return err
			}
			id, _, _ = strings.Cut(id, ".")
			fmt.Fprintf(stdout, "deleted token %s\n", id)
		}
		return nil
	default:
		return fmt.Errorf("unknown subcommand %q: use create, list, delete or rotate", verb)
	}
}

// caHash is the hash of the server CA file; off the server, that of the
// CA in the kubeconfig, which the server wrote from the same file.
func caHash(tlsDir string, kubeconfigCA []byte) (string, error) {
	data, err := os.ReadFile(certs.Layout(tlsDir).ServerCA.Cert)
	if err != nil {
		data = kubeconfigCA
	}
	if len(data) == 0 {
		return "", fmt.Errorf("cannot read the server CA to pin (%v): run on a server, or use a kubeconfig with certificate-authority-data", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
