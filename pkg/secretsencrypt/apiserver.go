package secretsencrypt

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// metric is the API server's record of the configuration it last loaded.
const metric = "apiserver_encryption_config_controller_last_config_info"

// LoadedHash returns the hash of the configuration the API server uses,
// from its metrics.
func LoadedHash(ctx context.Context, client kubernetes.Interface) (string, error) {
	b, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("read the API server's metrics: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		if _, rest, ok := strings.Cut(line, `hash="`); ok {
			// apiserver_id_hash="..." comes first and also ends in hash=".
			for strings.Contains(rest, `hash="`) {
				_, rest, _ = strings.Cut(rest, `hash="`)
			}
			hash, _, _ := strings.Cut(rest, `"`)
			return hash, nil
		}
	}
	return "", fmt.Errorf("the API server reports no %s: it runs without regente's --encryption-provider-config", metric)
}

// WaitLoaded waits until the API server has loaded the configuration with
// hash (it polls the file every few seconds).
func WaitLoaded(ctx context.Context, client kubernetes.Interface, hash string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		got, err := LoadedHash(ctx, client)
		if err == nil && got == hash {
			return nil
		}
		last = got
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the API server did not load the new encryption configuration within %s (it reports %s): look for \"error processing encryption config file\" in regente's log", timeout, last)
		case <-time.After(time.Second):
		}
	}
}

// Reencrypt rewrites every Secret unchanged. The API server stores a
// Secret again only when it was read with a key that no longer encrypts
// (or in plain text while a key does), so this writes each one with the
// current first provider and leaves the others alone. progress is called
// with the counts so far.
func Reencrypt(ctx context.Context, client kubernetes.Interface, progress func(done, total int)) (int, error) {
	secrets := client.CoreV1().Secrets(metav1.NamespaceAll)
	var all []corev1.Secret
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := secrets.List(ctx, opts)
		if err != nil {
			return 0, fmt.Errorf("list Secrets: %w", err)
		}
		all = append(all, list.Items...)
		if opts.Continue = list.Continue; opts.Continue == "" {
			break
		}
	}
	for i := range all {
		if err := rewrite(ctx, client, &all[i]); err != nil {
			return i, err
		}
		if progress != nil && ((i+1)%100 == 0 || i+1 == len(all)) {
			progress(i+1, len(all))
		}
	}
	return len(all), nil
}

// rewrite updates s as it is; a conflict (the Secret changed since the
// list, so it was written with the current key anyway) or a deletion
// needs nothing more.
func rewrite(ctx context.Context, client kubernetes.Interface, s *corev1.Secret) error {
	_, err := client.CoreV1().Secrets(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
	if err == nil || apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("rewrite Secret %s/%s: %w", s.Namespace, s.Name, err)
}
