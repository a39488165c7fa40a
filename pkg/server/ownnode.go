package server

import (
	"context"
	"fmt"

	"regente.io/regente/pkg/join"
	"regente.io/regente/pkg/kubeconfig"
)

// registerOwnNode records the password of the server's own node, so no
// agent can join under its name.
func registerOwnNode(ctx context.Context, adminKubeconfig, passwordFile, nodeName string) error {
	password, err := join.NodePassword(passwordFile)
	if err != nil {
		return err
	}
	_, client, err := kubeconfig.Client(adminKubeconfig)
	if err != nil {
		return err
	}
	if err := join.EnsureNodePassword(ctx, client, nodeName, password); err != nil {
		return fmt.Errorf("register this server's node %s: %w", nodeName, err)
	}
	return nil
}
