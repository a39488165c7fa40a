package join

import (
	"cmp"
	"path/filepath"
	"testing"
)

// loadedTokens is a token store as Load leaves it, with its files in a
// temporary directory and a made-up CA hash.
func loadedTokens(t testing.TB, server, agent string) *Tokens {
	dir := t.TempDir()
	return &Tokens{
		files:  TokenFiles{Token: filepath.Join(dir, "token"), Revoked: filepath.Join(dir, "token-revoked"), TLSDir: dir},
		loaded: true, caHash: "hash", server: server, agent: cmp.Or(agent, server), agentOwn: agent != "",
	}
}
