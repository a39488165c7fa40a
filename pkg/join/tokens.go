package join

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/certs"
)

// TokenFiles are where a server keeps its join secrets, each 0600.
type TokenFiles struct {
	Token      string // K10<CA hash>::server:<secret>
	AgentToken string // K10<CA hash>::node:<secret>, with --agent-token
	Revoked    string // the server secrets `regente token rotate` replaced: sha256 and when
	NodeToken  string // k3s's name for the token file: a link to Token
	TLSDir     string // holds the server CA the tokens pin
}

// Tokens is a server's token store: it settles the server and agent
// secrets at start from the flags and TokenFiles, answers the join
// endpoints' questions about them, and rotates the server secret. The
// join Server is built with it; until Load has run, every token is
// refused and rotations are turned away as "still starting".
type Tokens struct {
	files TokenFiles

	mu       sync.RWMutex
	loaded   bool
	caHash   string
	server   string
	agent    string // the server's secret unless --agent-token set its own
	agentOwn bool
	revoked  map[string]time.Time // by SecretHash

	// rotating serializes rotations, so that two at once cannot both
	// replace the same secret.
	rotating sync.Mutex
}

// NewTokens returns the store of files; Load fills it.
func NewTokens(files TokenFiles) *Tokens { return &Tokens{files: files} }

// Load settles the secrets and writes them, in the full K10 form that
// pins this server's CA, to the token file (and the agent token file with
// agentToken). The server secret is given (--token or --token-file's
// content), else the one already in the token file, else new.
func (t *Tokens) Load(ctx context.Context, given, agentToken string) error {
	trusted, err := certs.TrustedCAHashes(t.files.TLSDir)
	if err != nil {
		return err
	}
	caHash := trusted[0]
	server, err := secretOf("--token", given, trusted, KindServer)
	if err != nil {
		return err
	}
	revoked, err := readRevoked(t.files.Revoked)
	if err != nil {
		return err
	}
	// A --token left in a config file or unit after a rotation must not
	// quietly bring the replaced token back.
	if when, ok := revoked[SecretHash(server)]; ok && server != "" {
		return fmt.Errorf("--token (or --token-file, REGENTE_TOKEN, or the config file's token) holds the server token that `regente token rotate` replaced on %s: set it to the new token, in %s, or remove it to use that file", when.Format(time.RFC3339), t.files.Token)
	}
	if server == "" {
		if server, err = secretInFile(t.files.Token); err != nil {
			return err
		}
	}
	if server == "" {
		if server, err = NewSecret(); err != nil {
			return err
		}
		klog.FromContext(ctx).Info("Generated the join token", "file", t.files.Token)
	}
	agent, err := secretOf("--agent-token", agentToken, trusted, KindNode)
	if err != nil {
		return err
	}
	files := []atomicfile.File{{Path: t.files.Token, Mode: 0o600,
		Data: []byte(Token{CAHash: caHash, Kind: KindServer, Secret: server}.String() + "\n")}}
	if agent != "" {
		files = append(files, atomicfile.File{Path: t.files.AgentToken, Mode: 0o600,
			Data: []byte(Token{CAHash: caHash, Kind: KindNode, Secret: agent}.String() + "\n")})
	} else if err := os.Remove(t.files.AgentToken); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the old agent token: %w", err)
	}
	if err := atomicfile.Write(files...); err != nil {
		return fmt.Errorf("write the join token: %w", err)
	}
	if err := linkNodeToken(t.files); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.loaded, t.caHash, t.server, t.revoked = true, caHash, server, revoked
	t.agent, t.agentOwn = cmp.Or(agent, server), agent != ""
	return nil
}

// secrets returns the server and agent secrets; both "" before Load.
func (t *Tokens) secrets() (server, agent string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.server, t.agent
}

// revokedAt reports when a server or agent secret was rotated away.
func (t *Tokens) revokedAt(tok Token) (time.Time, bool) {
	if tok.Kind != KindServer && tok.Kind != KindNode {
		return time.Time{}, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	when, ok := t.revoked[SecretHash(tok.Secret)]
	return when, ok
}

// Rotate replaces the server secret with next, for the holder of the
// current server token presented: it writes the new token and adds the
// old secret to the revoked list, both 0600 and in one atomic step, then
// accepts the new secret, and returns the new full token. Refusals are
// the join endpoint's, with an HTTP status.
func (t *Tokens) Rotate(ctx context.Context, presented Token, next string) (string, error) {
	t.rotating.Lock()
	defer t.rotating.Unlock()
	t.mu.RLock()
	loaded, current, caHash := t.loaded, t.server, t.caHash
	revoked := maps.Clone(t.revoked)
	t.mu.RUnlock()
	if when, ok := t.revokedAt(presented); ok && presented.Kind == KindServer {
		return "", refuse(http.StatusUnauthorized, "the token was already replaced by `regente token rotate` on %s: the current one is in <data-dir>/server/token on a server", when.Format(time.RFC3339))
	}
	if !loaded {
		return "", fmt.Errorf("the server is still starting: try again in a moment")
	}
	if presented.Kind != KindServer || !equal(presented.Secret, current) {
		return "", refuse(http.StatusUnauthorized, "only the current server token (K10<hash>::server:<secret>, in <data-dir>/server/token) may rotate it; agent and bootstrap tokens may not")
	}
	if err := CheckNewSecret(next); err != nil {
		return "", refuse(http.StatusBadRequest, "%v", err)
	}
	if next == current {
		return "", refuse(http.StatusBadRequest, "the new token is the current one: give another, or leave --new-token out to have one generated")
	}
	if _, ok := t.revokedAt(Token{Kind: KindServer, Secret: next}); ok {
		return "", refuse(http.StatusBadRequest, "the new token was this server's token before and was rotated away: pick one never used")
	}
	if revoked == nil {
		revoked = map[string]time.Time{}
	}
	revoked[SecretHash(current)] = time.Now().UTC()
	token := Token{CAHash: caHash, Kind: KindServer, Secret: next}.String()
	var list strings.Builder
	list.WriteString("# Server tokens replaced by `regente token rotate`: sha256 of the secret, and when.\n")
	for _, hash := range slices.Sorted(maps.Keys(revoked)) {
		fmt.Fprintf(&list, "%s %s\n", hash, revoked[hash].Format(time.RFC3339))
	}
	if err := atomicfile.Write(
		atomicfile.File{Path: t.files.Token, Mode: 0o600, Data: []byte(token + "\n")},
		atomicfile.File{Path: t.files.Revoked, Mode: 0o600, Data: []byte(list.String())},
	); err != nil {
		return "", fmt.Errorf("rotate the server token: write the rotated token: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.server, t.revoked = next, revoked
	if !t.agentOwn {
		t.agent = next
	}
	klog.FromContext(ctx).Info("Rotated the server token; give the new one to the other servers and to agents before they restart",
		"component", "join", "file", t.files.Token)
	return token, nil
}

// linkNodeToken makes the node-token file a relative link to the token
// file, where k3s users and their scripts read the token that joins an
// agent; being a link, it follows a rotation.
func linkNodeToken(files TokenFiles) error {
	target := filepath.Base(files.Token)
	if got, err := os.Readlink(files.NodeToken); err == nil && got == target {
		return nil
	}
	tmp := files.NodeToken + ".tmp"
	_ = os.Remove(tmp) // a leftover of an interrupted run, if any
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s to the token: %w", files.NodeToken, err)
	}
	if err := os.Rename(tmp, files.NodeToken); err != nil {
		return fmt.Errorf("link %s to the token: %w", files.NodeToken, err)
	}
	return nil
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
	t, err := ParseToken(value)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	if t.CAHash != "" && !slices.Contains(trusted, t.CAHash) {
		return "", fmt.Errorf("%s pins CA %s..., but this server's CA is %s...: it is another cluster's token; give the secret alone, or this cluster's token", flag, t.CAHash[:12], caHash[:12])
	}
	if t.Kind == KindBootstrap || (t.Kind != kind && t.CAHash != "") {
		return "", fmt.Errorf("%s must be a %s token (K10<hash>::%s:<secret>) or a plain secret", flag, kind, kind)
	}
	return t.Secret, nil
}

// secretInFile returns the server secret kept in the token file, if any.
// A replaced CA changes the hash the file is rewritten with, not the
// secret.
func secretInFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the join token: %w", err)
	}
	t, err := ParseToken(strings.TrimSpace(string(b)))
	if err != nil || t.Kind != KindServer {
		return "", fmt.Errorf("%s is not a server token (%v): restore it, or remove it to generate a new one (agents will need the new token)", path, err)
	}
	return t.Secret, nil
}
