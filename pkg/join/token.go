package join

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"

	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// tokenPrefix marks a full token, as in k3s's K10 tokens.
const tokenPrefix = "K10"

// Credential kinds in a token.
const (
	KindServer    = "server"    // server:<secret>: servers and agents
	KindNode      = "node"      // node:<secret> (--agent-token): agents only
	KindBootstrap = "bootstrap" // <id>.<secret>: a bootstrap token Secret
)

var (
	caHashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Token is a parsed join token.
type Token struct {
	CAHash string // hex SHA-256 of the server CA file; "" if not pinned
	Kind   string
	ID     string // bootstrap tokens only
	Secret string
}

// String returns the full form, K10<hash>::<credential>, or the bare
// credential when the hash is unknown.
func (t Token) String() string {
	if t.CAHash == "" {
		return t.Credential()
	}
	return tokenPrefix + t.CAHash + "::" + t.Credential()
}

// Credential is the part the server checks.
func (t Token) Credential() string {
	if t.Kind == KindBootstrap {
		return t.ID + "." + t.Secret
	}
	return t.Kind + ":" + t.Secret
}

// ParseToken accepts K10<hash>::server:<secret>, K10<hash>::node:<secret>,
// K10<hash>::<id>.<secret>, and the same credentials without the K10 part.
// A bare secret (no kind) is a server secret, as k3s's --token takes it.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, fmt.Errorf("the token is empty: use the content of <data-dir>/server/token on the server, or a token from `regente token create`")
	}
	var t Token
	if rest, ok := strings.CutPrefix(s, tokenPrefix); ok {
		hash, cred, found := strings.Cut(rest, "::")
		if !found {
			return Token{}, fmt.Errorf("token %s: a K10 token is K10<CA hash>::<credential>; copy it whole from <data-dir>/server/token", redact(s))
		}
		if !caHashPattern.MatchString(hash) {
			return Token{}, fmt.Errorf("token %s: the CA hash after K10 must be 64 hex digits; copy the token whole from <data-dir>/server/token", redact(s))
		}
		t.CAHash, s = hash, cred
	}
	if bootstraputil.IsValidBootstrapToken(s) {
		t.Kind = KindBootstrap
		t.ID, t.Secret, _ = strings.Cut(s, ".")
		return t, nil
	}
	kind, secret, found := strings.Cut(s, ":")
	switch {
	case !found:
		t.Kind, t.Secret = KindServer, s
	case kind == KindServer || kind == KindNode:
		t.Kind, t.Secret = kind, secret
	default:
		return Token{}, fmt.Errorf("token %s: the credential must be server:<secret>, node:<secret> or <id>.<secret>", redact(s))
	}
	if t.Secret == "" {
		return Token{}, fmt.Errorf("token %s: the secret is empty", redact(s))
	}
	return t, nil
}

// LoadToken parses --token, or the content of --token-file when --token
// is empty.
func LoadToken(token, tokenFile string) (Token, error) {
	raw, err := ReadToken(token, tokenFile)
	if err != nil {
		return Token{}, err
	}
	t, err := ParseToken(raw)
	if err != nil {
		return Token{}, fmt.Errorf("--token: %w", err)
	}
	return t, nil
}

// minSecret is the shortest secret `regente token rotate` accepts: the
// server token grants administrator access to the cluster.
const minSecret = 16

// CheckNewSecret accepts a secret for a rotated server token: long enough,
// and one that reads back as itself in server:<secret> form.
func CheckNewSecret(secret string) error {
	t, err := ParseToken(secret)
	switch {
	case secret == "":
		return fmt.Errorf("the new token is empty: give one with --new-token, or leave the flag out to have one generated")
	case err != nil || t.Kind != KindServer || t.Secret != secret || strings.ContainsAny(secret, " \t\r\n"):
		return fmt.Errorf("the new token must be a plain secret of letters, digits and punctuation other than \":\", not a token of another form: leave --new-token out to have one generated")
	case len(secret) < minSecret:
		return fmt.Errorf("the new token has %d characters: the server token grants administrator access, so use at least %d, or leave --new-token out to have one generated", len(secret), minSecret)
	}
	return nil
}

// SecretHash is how a replaced secret is remembered without keeping it.
func SecretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewSecret returns a random secret for a server or agent token.
func NewSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a token secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// redact keeps a token's secret out of logs and errors: it shows the start
// of a K10 token (the CA hash's first digits) and nothing of a bare one.
func redact(s string) string {
	// The first 8 digits of the CA hash help to tell tokens apart and
	// are no secret; shown only when a whole hash follows K10, since in
	// anything else they may be the start of a secret.
	if rest, ok := strings.CutPrefix(s, tokenPrefix); ok && len(rest) >= 64 && caHashPattern.MatchString(rest[:64]) {
		return fmt.Sprintf("%q", s[:11]+"...")
	}
	return "(hidden)"
}

// ServerSecret is the secret of the server token in tokenFile.
func ServerSecret(tokenFile string) (string, error) {
	t, err := LoadToken("", tokenFile)
	if err != nil {
		return "", err
	}
	if t.Kind != KindServer {
		return "", fmt.Errorf("%s holds a %s token, not the server token", tokenFile, t.Kind)
	}
	return t.Secret, nil
}

// ReadToken returns token, or the content of tokenFile when token is empty.
func ReadToken(token, tokenFile string) (string, error) {
	if token != "" || tokenFile == "" {
		return token, nil
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return "", fmt.Errorf("read --token-file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("--token-file %s is empty: put the token in it", tokenFile)
	}
	return t, nil
}
