package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/join"
	"regente.io/regente/pkg/kubeconfig"
)

// ensureTokens settles the server's join secrets and writes them, in the
// full K10 form that pins this server's CA, to <data-dir>/server/token
// (and agent-token with --agent-token), mode 0600. The secret is --token
// (or --token-file), else the one already in the token file, else new.
func ensureTokens(ctx context.Context, cfg *config.Server, paths datadir.ServerPaths, joinServer *join.Server) error {
	trusted, err := certs.TrustedCAHashes(paths.TLSDir)
	if err != nil {
		return err
	}
	caHash := trusted[0]
	given, err := join.ReadToken(cfg.Token, cfg.TokenFile)
	if err != nil {
		return err
	}
	server, err := secretOf("--token", given, trusted, join.KindServer)
	if err != nil {
		return err
	}
	revoked, err := readRevoked(paths.RevokedFile)
	if err != nil {
		return err
	}
	// A --token left in a config file or unit after a rotation must not
	// quietly bring the replaced token back.
	if when, ok := revoked[join.SecretHash(server)]; ok && server != "" {
		return fmt.Errorf("--token (or --token-file, REGENTE_TOKEN, or the config file's token) holds the server token that `regente token rotate` replaced on %s: set it to the new token, in %s, or remove it to use that file", when.Format(time.RFC3339), paths.TokenFile)
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
	agent, err := secretOf("--agent-token", cfg.AgentToken, trusted, join.KindNode)
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
	if err := linkNodeToken(paths); err != nil {
		return err
	}
	joinServer.SetSecrets(server, agent)
	joinServer.SetRevoked(revoked)
	joinServer.SetRotator(func(ctx context.Context, old, next string) (string, error) {
		return rotateToken(ctx, paths, caHash, old, next)
	})
	return nil
}

// linkNodeToken makes server/node-token a relative link to server/token,
// where k3s users and their scripts read the token that joins an agent;
// being a link, it follows a rotation.
func linkNodeToken(paths datadir.ServerPaths) error {
	target := filepath.Base(paths.TokenFile)
	if got, err := os.Readlink(paths.NodeToken); err == nil && got == target {
		return nil
	}
	tmp := paths.NodeToken + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s to the token: %w", paths.NodeToken, err)
	}
	if err := os.Rename(tmp, paths.NodeToken); err != nil {
		return fmt.Errorf("link %s to the token: %w", paths.NodeToken, err)
	}
	return nil
}

// rotateToken writes the new server token and adds the old secret to the
// revoked list, both 0600 and in one atomic step, and returns the new
// full token. The join service switches to it once this returns.
func rotateToken(ctx context.Context, paths datadir.ServerPaths, caHash, old, next string) (string, error) {
	revoked, err := readRevoked(paths.RevokedFile)
	if err != nil {
		return "", err
	}
	revoked[join.SecretHash(old)] = time.Now().UTC()
	token := join.Token{CAHash: caHash, Kind: join.KindServer, Secret: next}.String()
	var list strings.Builder
	list.WriteString("# Server tokens replaced by `regente token rotate`: sha256 of the secret, and when.\n")
	for _, hash := range slices.Sorted(maps.Keys(revoked)) {
		fmt.Fprintf(&list, "%s %s\n", hash, revoked[hash].Format(time.RFC3339))
	}
	if err := atomicfile.Write(
		atomicfile.File{Path: paths.TokenFile, Mode: 0o600, Data: []byte(token + "\n")},
		atomicfile.File{Path: paths.RevokedFile, Mode: 0o600, Data: []byte(list.String())},
	); err != nil {
		return "", fmt.Errorf("write the rotated token: %w", err)
	}
	klog.FromContext(ctx).Info("Rotated the server token; give the new one to the other servers and to agents before they restart",
		"component", "join", "file", paths.TokenFile)
	return token, nil
}

// readRevoked reads the revoked list; a missing file is an empty list.
func readRevoked(path string) (map[string]time.Time, error) {
	revoked := map[string]time.Time{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return revoked, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the list of rotated tokens: %w", err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hash, at, _ := strings.Cut(line, " ")
		when, err := time.Parse(time.RFC3339, at)
		if err != nil || len(hash) != 64 {
			return nil, fmt.Errorf("%s line %d is not \"<sha256> <RFC 3339 time>\": restore the file, or remove the line", path, i+1)
		}
		revoked[hash] = when
	}
	return revoked, nil
}

// secretOf returns the secret of a token flag's value; a full token must
// pin this server's CA (trusted[0], or the one it replaced) and be of the
// kind the flag sets.
func secretOf(flag, value string, trusted []string, kind string) (string, error) {
	caHash := trusted[0]
	if value == "" {
		return "", nil
	}
	t, err := join.ParseToken(value)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	if t.CAHash != "" && !slices.Contains(trusted, t.CAHash) {
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
