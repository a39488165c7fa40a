package join

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func bootstrapSecret(id, secret string, expires time.Time, auth string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: metav1.NamespaceSystem},
		Type:       "bootstrap.kubernetes.io/token",
		Data: map[string][]byte{
			"token-id": []byte(id), "token-secret": []byte(secret),
			"expiration":                     []byte(expires.UTC().Format(time.RFC3339)),
			"usage-bootstrap-authentication": []byte(auth),
		},
	}
}

func TestCheckToken(t *testing.T) {
	now := time.Now()
	client := fake.NewClientset(
		bootstrapSecret("abcdef", "0123456789abcdef", now.Add(time.Hour), "true"),
		bootstrapSecret("oldold", "0123456789abcdef", now.Add(-time.Hour), "true"),
		bootstrapSecret("signer", "0123456789abcdef", now.Add(time.Hour), "false"),
	)
	s := &Server{client: client, cfg: ServerConfig{Tokens: loadedTokens(t, "srv-secret", "agent-secret")}}
	for _, tc := range []struct {
		credential, want string // want "" = accepted
	}{
		{"server:srv-secret", ""},
		{"node:agent-secret", ""},
		{"abcdef.0123456789abcdef", ""},
		{"server:agent-secret", "does not match"},
		{"node:srv-secret", "does not match"},
		{"abcdef.ffffffffffffffff", "does not match"},
		{"oldold.0123456789abcdef", "has expired"},
		{"signer.0123456789abcdef", "may not be used to join"},
		{"nonexi.0123456789abcdef", "does not exist"},
		{"", "the token is empty"},
	} {
		err := s.checkToken(context.Background(), tc.credential)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q refused: %v", tc.credential, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.credential, err, tc.want)
		}
	}
	// Until the secrets are set, nothing is accepted.
	if err := (&Server{client: client}).checkToken(context.Background(), "server:"); err == nil {
		t.Error("an empty server secret was accepted")
	}
}

func TestNodePasswordProtectsTheName(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	if err := EnsureNodePassword(ctx, client, "n1", "first"); err != nil {
		t.Fatalf("first join: %v", err)
	}
	if err := EnsureNodePassword(ctx, client, "n1", "first"); err != nil {
		t.Errorf("same machine again: %v", err)
	}
	err := EnsureNodePassword(ctx, client, "n1", "other")
	var ref *refusal
	if !errors.As(err, &ref) || ref.status != http.StatusForbidden || !strings.Contains(err.Error(), "kubectl delete node n1") {
		t.Errorf("another machine: %v, want a 403 refusal naming the fix", err)
	}
	secret, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, NodePasswordSecret("n1"), metav1.GetOptions{})
	if err != nil || strings.Contains(string(secret.Data["hash"]), "first") {
		t.Errorf("the password must be stored hashed: %v %q", err, secret.Data["hash"])
	}
}
