package join

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func postRotate(t *testing.T, s *Server, credential, newSecret string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(RotateRequest{Token: credential, NewSecret: newSecret})
	rec := httptest.NewRecorder()
	s.rotate(rec, httptest.NewRequest(http.MethodPost, PathRotate, bytes.NewReader(body)))
	return rec.Code, rec.Body.String()
}

func TestRotate(t *testing.T) {
	const old, next = "old-secret-0123456789", "new-secret-0123456789"
	for _, agentToken := range []string{"", "agent-secret-0123456789"} {
		t.Run("agent token "+agentToken, func(t *testing.T) {
			s := &Server{cfg: ServerConfig{Tokens: NewTokens(TokenFiles{})}}
			if code, body := postRotate(t, s, "server:"+old, next); code != http.StatusInternalServerError || !strings.Contains(body, "still starting") {
				t.Errorf("before the store is loaded: %d %s", code, body)
			}
			tokens := loadedTokens(t, old, agentToken)
			s.cfg.Tokens = tokens
			persisted := func() string {
				b, _ := os.ReadFile(tokens.files.Token)
				return string(b)
			}
			for _, tc := range []struct {
				credential, newSecret string
				code                  int
				want                  string
			}{
				{"node:" + old, next, http.StatusUnauthorized, "only the current server token"},
				{"server:wrong-secret-0123456789", next, http.StatusUnauthorized, "only the current server token"},
				{"server:" + old, "short", http.StatusBadRequest, "at least 16"},
				{"server:" + old, "node:xxxxxxxxxxxxxxxxxxxx", http.StatusBadRequest, "plain secret"},
				{"server:" + old, old, http.StatusBadRequest, "is the current one"},
			} {
				if code, body := postRotate(t, s, tc.credential, tc.newSecret); code != tc.code || !strings.Contains(body, tc.want) {
					t.Errorf("%s → %s: %d %s, want %d %q", tc.credential, tc.newSecret, code, body, tc.code, tc.want)
				}
			}
			if got := persisted(); got != "" {
				t.Fatalf("a refused rotation was persisted: %s", got)
			}
			code, body := postRotate(t, s, "server:"+old, next)
			if code != http.StatusOK || !strings.Contains(body, "K10hash::server:"+next) {
				t.Fatalf("rotation: %d %s", code, body)
			}
			if got := persisted(); got != "K10hash::server:"+next+"\n" {
				t.Errorf("token file holds %q", got)
			}
			if b, _ := os.ReadFile(tokens.files.Revoked); !strings.Contains(string(b), SecretHash(old)) || strings.Contains(string(b), old) {
				t.Errorf("revoked list must hold the old secret's hash only:\n%s", b)
			}
			ctx := context.Background()
			var ref *refusal
			if err := s.checkToken(ctx, "server:"+old); !errors.As(err, &ref) || !strings.Contains(err.Error(), "replaced by `regente token rotate`") {
				t.Errorf("join with the old token: %v", err)
			}
			if err := s.checkToken(ctx, "server:"+next); err != nil {
				t.Errorf("join with the new token: %v", err)
			}
			// The agent secret follows the server's unless --agent-token set its own.
			wantAgent := next
			if agentToken != "" {
				wantAgent = agentToken
			}
			if err := s.checkToken(ctx, "node:"+wantAgent); err != nil {
				t.Errorf("join with agent secret %s: %v", wantAgent, err)
			}
			if code, body := postRotate(t, s, "server:"+old, "third-secret-0123456789"); code != http.StatusUnauthorized || !strings.Contains(body, "already replaced") {
				t.Errorf("rotating with the old token again: %d %s", code, body)
			}
			if code, body := postRotate(t, s, "server:"+next, old); code != http.StatusBadRequest || !strings.Contains(body, "rotated away") {
				t.Errorf("rotating back to the old secret: %d %s", code, body)
			}
			if _, err := s.handleBootstrap(httptest.NewRequest(http.MethodPost, PathBootstrap, strings.NewReader(`{"token":"server:`+old+`"}`))); err == nil || !strings.Contains(err.Error(), "replaced by `regente token rotate`") {
				t.Errorf("server join with the old token: %v", err)
			}
		})
	}
}

func TestCheckNewSecret(t *testing.T) {
	for secret, want := range map[string]string{
		"0123456789abcdef":        "",
		"with-punctuation!#$%&()": "",
		"":                        "is empty",
		"0123456789abcde":         "at least 16",
		"server:0123456789abcdef": "plain secret",
		"abcdef.0123456789abcdef": "plain secret", // a bootstrap token's form
		"0123456789 abcdef":       "plain secret",
	} {
		err := CheckNewSecret(secret)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckNewSecret(%q) = %v, want %q", secret, err, want)
		}
	}
}
