package token

import (
	"context"
	"fmt"
	"io"

	"k8s.io/client-go/tools/clientcmd"

	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/join"
)

type rotateOptions struct {
	kubeconfig, current, newToken, server string
	paths                                 datadir.ServerPaths
}

// rotate replaces the server token through the running server, which
// authenticates the request with the current token and writes the new one
// to its token file. Nodes that joined keep running on their
// certificates; only joins (a new node, or a node restarting) need the new
// token, which goes to stdout so that scripts can capture it.
func rotate(ctx context.Context, stdout, stderr io.Writer, o rotateOptions) error {
	tokenFile := o.paths.TokenFile
	current, err := join.LoadToken(o.current, tokenFile)
	if err != nil {
		return fmt.Errorf("read the current server token (run on a server, or give it with --token): %w", err)
	}
	secret := o.newToken
	if secret == "" {
		if secret, err = join.NewSecret(); err != nil {
			return err
		}
	} else {
		// A full token is accepted too, as --token takes it; it must pin
		// this cluster's CA.
		t, err := join.ParseToken(secret)
		if err != nil {
			return fmt.Errorf("--new-token: %w", err)
		}
		if t.CAHash != "" && current.CAHash != "" && t.CAHash != current.CAHash {
			return fmt.Errorf("--new-token pins another cluster's CA than the current token: give the secret alone")
		}
		if t.Kind == join.KindServer {
			secret = t.Secret
		}
	}
	if err := join.CheckNewSecret(secret); err != nil {
		return fmt.Errorf("--new-token: %w", err)
	}
	serverURL := o.server
	if serverURL == "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
		if err != nil {
			return fmt.Errorf("find the server to rotate on: give --server https://<server>:6443, or a readable --kubeconfig (%v)", err)
		}
		serverURL = cfg.Host
	}
	token, err := join.RotateToken(ctx, serverURL, current, secret, o.paths.TLSDir)
	if err != nil {
		return fmt.Errorf("rotate the server token on %s: %w", serverURL, err)
	}
	fmt.Fprintln(stdout, token)
	fmt.Fprintf(stderr, `The server token is rotated; the server keeps the new one in %s.
Joins with the old token are refused from now on; nodes that joined keep running.
Give the new token to every agent and server that joins or restarts (their --token,
REGENTE_TOKEN or config file), and restart any other server with it.
`, tokenFile)
	return nil
}
