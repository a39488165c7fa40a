package join

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestBootstrapTokens(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	tokens := BootstrapTokens{Secrets: client.CoreV1().Secrets(metav1.NamespaceSystem)}
	made, err := tokens.Create(ctx, "cahash", time.Hour, "for the edge")
	if err != nil {
		t.Fatal(err)
	}
	if made.Kind != KindBootstrap || made.CAHash != "cahash" || len(made.ID) != 6 || len(made.Secret) != 16 {
		t.Fatalf("created %+v", made)
	}
	// The join endpoint accepts what Create stored.
	s := &Server{client: client, cfg: ServerConfig{Tokens: loadedTokens(t, "srv-secret", "")}}
	if err := s.checkToken(ctx, made.ID+"."+made.Secret); err != nil {
		t.Errorf("join with the created token: %v", err)
	}
	infos, err := tokens.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].ID != made.ID || infos[0].Description != "for the edge" ||
		strings.Join(infos[0].Usages, ",") != "authentication,signing" || infos[0].Expires == "never" {
		t.Errorf("listed %+v", infos)
	}
	if err := tokens.Delete(ctx, made.ID+"."+made.Secret); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Delete(ctx, made.ID); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("deleting twice: %v", err)
	}
}
