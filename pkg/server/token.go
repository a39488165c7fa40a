package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/klog/v2"

	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/join"
	"regente.io/regente/pkg/kubeconfig"
)

// ensureTokens settles the server's join secrets and writes them, in the
// full K10 form that pins this server's CA, to <data-dir>/server/token
// (and agent-token with --agent-token), mode 0600. The secret is --token
// (or --token-file), else the one already in the token file, else new.
func ensureTokens(ctx context.Context, cfg *config.Server, paths config.Paths, joinServer *join.Server) error {
	caHash, err := certs.CAHash(certs.Layout(paths.TLSDir).ServerCA.Cert)
	if err != nil {
		return err
	}
	given, err := config.ReadToken(cfg.Token, cfg.TokenFile)
	if err != nil {
		return err
	}
	server, err := secretOf("--token", given, caHash, join.KindServer)
	if err != nil {
		return err
	}
	if server == "" {
		if server, err = secretInFile(paths.TokenFile, caHash); err != nil {
			return err
		}
	}
	if server == "" {
		if server, err = join.NewSecret(); err != nil {
			return err
		}
		klog.FromContext(ctx).Info("Generated the join token", "file", paths.TokenFile)
	}
	agent, err := secretOf("--agent-token", cfg.AgentToken, caHash, join.KindNode)
	if err != nil {
		return err
	}
	files := []atomicfile.File{{Path: paths.TokenFile, Mode: 0o600,
		Data: []byte(join.Token{CAHash: caHash, Kind: join.KindServer, Secret: server}.String() + "\n")}}
	if agent != "" {
		files = append(files, atomicfile.File{Path: paths.AgentToken, Mode: 0o600,
			Data: []byte(join.Token{CAHash: caHash, Kind: join.KindNode, Secret: agent}.String() + "\n")})
	} else if err := os.Remove(paths.AgentToken); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the old agent token: %w", err)
	}
	if err := atomicfile.Write(files...); err != nil {
		return fmt.Errorf("write the join token: %w", err)
	}
	joinServer.SetSecrets(server, agent)
	return nil
}

// secretOf returns the secret of a token flag's value; a full token must
// pin this server's CA and be of the kind the flag sets.
func secretOf(flag, value, caHash, kind string) (string, error) {
	if value == "" {
		return "", nil
	}
	t, err := join.ParseToken(value)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	if t.CAHash != "" && t.CAHash != caHash {
		return "", fmt.Errorf("%s pins CA %s..., but this server's CA is %s...: it is another cluster's token; give the secret alone, or this cluster's token", flag, t.CAHash[:12], caHash[:12])
	}
	if t.Kind == join.KindBootstrap || (t.Kind != kind && t.CAHash != "") {
		return "", fmt.Errorf("%s must be a %s token (K10<hash>::%s:<secret>) or a plain secret", flag, kind, kind)
	}
	return t.Secret, nil
}

// secretInFile returns the server secret kept in the token file, if any.
func secretInFile(path, caHash string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the join token: %w", err)
	}
	t, err := join.ParseToken(strings.TrimSpace(string(b)))
	if err != nil || t.Kind != join.KindServer {
		return "", fmt.Errorf("%s is not a server token (%v): restore it, or remove it to generate a new one (agents will need the new token)", path, err)
	}
	// A replaced CA changes the hash the file is rewritten with, not the
	// secret.
	return t.Secret, nil
}

// registerOwnNode records the password of the server's own node, so no
// agent can join under its name.
func registerOwnNode(ctx context.Context, adminKubeconfig, dataDir, nodeName string) error {
	password, err := join.NodePassword(filepath.Join(dataDir, "agent", "node-password"))
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
