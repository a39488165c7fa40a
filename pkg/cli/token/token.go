// Package token is the `regente token` verb: create, list and delete the
// bootstrap tokens agents may join with, stored as kubeadm stores them
// (Secrets of type bootstrap.kubernetes.io/token in kube-system), so their
// expiry is enforced and cleaned up by upstream's controllers; and rotate
// the server token, as k3s's `token rotate` does.
package token

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	bootstrapsecretutil "k8s.io/cluster-bootstrap/util/secrets"

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
	secrets := client.CoreV1().Secrets(metav1.NamespaceSystem)
	switch verb, rest := fs.Arg(0), fs.Args()[1:]; verb {
	case "create":
		hash, err := caHash(paths.TLSDir, restCfg.TLSClientConfig.CAData)
		if err != nil {
			return err
		}
		return create(ctx, secrets, stdout, hash, *ttl, *description)
	case "list":
		return list(ctx, secrets, stdout)
	case "delete":
		if len(rest) == 0 {
			return errors.New("token delete: name the token IDs to delete (see regente token list)")
		}
		for _, id := range rest {
			id, _, _ = strings.Cut(id, ".")
			if err := secrets.Delete(ctx, bootstraputil.BootstrapTokenSecretName(id), metav1.DeleteOptions{}); err != nil {
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("token %s does not exist (see regente token list)", id)
				}
				return fmt.Errorf("delete token %s: %w", id, err)
			}
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
	data, err := os.ReadFile(filepath.Join(tlsDir, "server-ca.crt"))
	if err != nil {
		data = kubeconfigCA
	}
	if len(data) == 0 {
		return "", fmt.Errorf("cannot read the server CA to pin (%v): run on a server, or use a kubeconfig with certificate-authority-data", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

type secretsClient interface {
	Create(context.Context, *corev1.Secret, metav1.CreateOptions) (*corev1.Secret, error)
	List(context.Context, metav1.ListOptions) (*corev1.SecretList, error)
}

func create(ctx context.Context, secrets secretsClient, stdout io.Writer, hash string, ttl time.Duration, description string) error {
	raw, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return fmt.Errorf("generate a token: %w", err)
	}
	id, secret, _ := strings.Cut(raw, ".")
	data := map[string]string{
		bootstrapapi.BootstrapTokenIDKey:               id,
		bootstrapapi.BootstrapTokenSecretKey:           secret,
		bootstrapapi.BootstrapTokenUsageAuthentication: "true",
		bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
	}
	if ttl > 0 {
		data[bootstrapapi.BootstrapTokenExpirationKey] = time.Now().Add(ttl).UTC().Format(time.RFC3339)
	}
	if description != "" {
		data[bootstrapapi.BootstrapTokenDescriptionKey] = description
	}
	_, err = secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(id), Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretType(bootstrapapi.SecretTypeBootstrapToken),
		StringData: data,
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("store the token: %w", err)
	}
	fmt.Fprintln(stdout, join.Token{CAHash: hash, Kind: join.KindBootstrap, ID: id, Secret: secret}.String())
	return nil
}

func list(ctx context.Context, secrets secretsClient, stdout io.Writer) error {
	all, err := secrets.List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(bootstrapapi.SecretTypeBootstrapToken)})
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tEXPIRES\tUSAGES\tDESCRIPTION")
	for i := range all.Items {
		s := &all.Items[i]
		id := bootstrapsecretutil.GetData(s, bootstrapapi.BootstrapTokenIDKey)
		expires := "never"
		if remaining, expired := bootstrapsecretutil.GetExpiration(s, time.Now()); expired {
			expires = "expired"
		} else if remaining > 0 {
			expires = bootstrapsecretutil.GetData(s, bootstrapapi.BootstrapTokenExpirationKey)
		}
		var usages []string
		for k, v := range s.Data {
			if u, ok := strings.CutPrefix(k, bootstrapapi.BootstrapTokenUsagePrefix); ok && string(v) == "true" {
				usages = append(usages, u)
			}
		}
		slices.Sort(usages)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", id, expires, strings.Join(usages, ","), bootstrapsecretutil.GetData(s, bootstrapapi.BootstrapTokenDescriptionKey))
	}
	return w.Flush()
}
