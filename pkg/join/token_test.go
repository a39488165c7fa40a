package join

import (
	"strings"
	"testing"
)

func TestParseToken(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in   string
		want Token
	}{
		{"K10" + hash + "::server:s3cret", Token{CAHash: hash, Kind: KindServer, Secret: "s3cret"}},
		{"K10" + hash + "::node:s3cret", Token{CAHash: hash, Kind: KindNode, Secret: "s3cret"}},
		{"K10" + hash + "::abcdef.0123456789abcdef", Token{CAHash: hash, Kind: KindBootstrap, ID: "abcdef", Secret: "0123456789abcdef"}},
		{"abcdef.0123456789abcdef", Token{Kind: KindBootstrap, ID: "abcdef", Secret: "0123456789abcdef"}},
		{"  plain-secret\n", Token{Kind: KindServer, Secret: "plain-secret"}},
	} {
		got, err := ParseToken(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseToken(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if tc.want.CAHash != "" && got.String() != strings.TrimSpace(tc.in) {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestParseTokenErrorsNameTheFixAndHideTheSecret(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	for _, tc := range []struct{ in, want string }{
		{"", "the token is empty"},
		{"K10" + hash + "server:topsecret", "K10<CA hash>::<credential>"},
		{"K10abc::server:topsecret", "64 hex digits"},
		{"K10" + hash + "::admin:topsecret", "server:<secret>, node:<secret> or <id>.<secret>"},
		{"K10" + hash + "::server:", "the secret is empty"},
	} {
		_, err := ParseToken(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseToken(%q) error %v, want %q", tc.in, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("ParseToken(%q) error shows the secret: %v", tc.in, err)
		}
	}
}
