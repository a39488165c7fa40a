package join

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	bootstrapsecretutil "k8s.io/cluster-bootstrap/util/secrets"
)

// SecretsClient is what the bootstrap tokens need of the API: kube-system's
// Secrets.
type SecretsClient interface {
	Create(context.Context, *corev1.Secret, metav1.CreateOptions) (*corev1.Secret, error)
	List(context.Context, metav1.ListOptions) (*corev1.SecretList, error)
	Delete(context.Context, string, metav1.DeleteOptions) error
}

// BootstrapTokens are the tokens `regente token` creates for agents,
// stored as kubeadm stores them (Secrets of type
// bootstrap.kubernetes.io/token in kube-system), so their expiry is
// enforced, and expired ones cleaned up, by upstream's controllers.
type BootstrapTokens struct{ Secrets SecretsClient }

// BootstrapTokenInfo is one listed token, without its secret.
type BootstrapTokenInfo struct {
	ID          string
	Expires     string // RFC 3339, "never" or "expired"
	Usages      []string
	Description string
}

// Create stores a new token that may authenticate and sign, expiring
// after ttl (0: never), and returns it pinned to caHash.
func (b BootstrapTokens) Create(ctx context.Context, caHash string, ttl time.Duration, description string) (Token, error) {
	raw, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return Token{}, fmt.Errorf("generate a token: %w", err)
	}
	id, secret, _ := strings.Cut(raw, ".")
	data := map[string]string{
		bootstrapapi.BootstrapTokenIDKey:               id,
		bootstrapapi.BootstrapTokenSecretKey:           secret,
		bootstrapapi.BootstrapTokenUsageAuthentication: "true",
		bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
	}
	if ttl > 0 {
		data[bootstrapapi.BootstrapTokenExpirationKey] = time.Now().Add(ttl).UTC().Format(time.RFC3339)
	}
	if description != "" {
		data[bootstrapapi.BootstrapTokenDescriptionKey] = description
	}
	// Data rather than StringData: what is read back is what was written,
	// with or without an API server to convert one into the other.
	bytes := make(map[string][]byte, len(data))
	for k, v := range data {
		bytes[k] = []byte(v)
	}
	_, err = b.Secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(id), Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretType(bootstrapapi.SecretTypeBootstrapToken),
		Data:       bytes,
	}, metav1.CreateOptions{})
	if err != nil {
		return Token{}, fmt.Errorf("store the token: %w", err)
	}
	return Token{CAHash: caHash, Kind: KindBootstrap, ID: id, Secret: secret}, nil
}

// List returns every bootstrap token.
func (b BootstrapTokens) List(ctx context.Context) ([]BootstrapTokenInfo, error) {
	all, err := b.Secrets.List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(bootstrapapi.SecretTypeBootstrapToken)})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	infos := make([]BootstrapTokenInfo, 0, len(all.Items))
	for i := range all.Items {
		s := &all.Items[i]
		info := BootstrapTokenInfo{ID: bootstrapsecretutil.GetData(s, bootstrapapi.BootstrapTokenIDKey), Expires: "never",
			Description: bootstrapsecretutil.GetData(s, bootstrapapi.BootstrapTokenDescriptionKey)}
		if remaining, expired := bootstrapsecretutil.GetExpiration(s, time.Now()); expired {
			info.Expires = "expired"
		} else if remaining > 0 {
			info.Expires = bootstrapsecretutil.GetData(s, bootstrapapi.BootstrapTokenExpirationKey)
		}
		for k, v := range s.Data {
			if u, ok := strings.CutPrefix(k, bootstrapapi.BootstrapTokenUsagePrefix); ok && string(v) == "true" {
				info.Usages = append(info.Usages, u)
			}
		}
		slices.Sort(info.Usages)
		infos = append(infos, info)
	}
	return infos, nil
}

// Delete removes the token with idOrToken's ID (<id> or <id>.<secret>).
func (b BootstrapTokens) Delete(ctx context.Context, idOrToken string) error {
	id, _, _ := strings.Cut(idOrToken, ".")
	if err := b.Secrets.Delete(ctx, bootstraputil.BootstrapTokenSecretName(id), metav1.DeleteOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("token %s does not exist (see regente token list)", id)
		}
		return fmt.Errorf("delete token %s: %w", id, err)
	}
	return nil
}
