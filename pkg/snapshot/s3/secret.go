package s3

import (
	"context"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/kubeconfig"
)

// Resolve returns c with the settings of its --etcd-s3-config-secret, a
// Secret in kube-system read through the admin kubeconfig, when it names
// one and no --etcd-s3-bucket is given (k3s's rule: the Secret configures
// S3 when the flags do not). The Secret is read on every use, so an
// edited Secret takes effect at the next snapshot.
func Resolve(ctx context.Context, c config.S3, adminKubeconfig string) (config.S3, error) {
	if c.ConfigSecret == "" || c.Bucket != "" {
		return c, nil
	}
	_, client, err := kubeconfig.Client(adminKubeconfig)
	if err != nil {
		return c, fmt.Errorf("read --etcd-s3-config-secret %s: %w", c.ConfigSecret, err)
	}
	secret, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, c.ConfigSecret, metav1.GetOptions{})
	if err != nil {
		return c, fmt.Errorf("read --etcd-s3-config-secret: %w", err)
	}
	return FromSecret(c, secret.Name, secret.Data)
}

// FromSecret applies a config Secret's etcd-s3-* keys over c.
func FromSecret(c config.S3, name string, data map[string][]byte) (config.S3, error) {
	strs := map[string]*string{
		"etcd-s3-endpoint": &c.Endpoint, "etcd-s3-access-key": &c.AccessKey, "etcd-s3-secret-key": &c.SecretKey,
		"etcd-s3-bucket": &c.Bucket, "etcd-s3-region": &c.Region, "etcd-s3-folder": &c.Folder,
	}
	for key, field := range strs {
		if v, ok := data[key]; ok {
			*field = string(v)
		}
	}
	bools := map[string]*bool{"etcd-s3-skip-ssl-verify": &c.SkipSSLVerify, "etcd-s3-insecure": &c.Insecure}
	for key, field := range bools {
		if v, ok := data[key]; ok {
			b, err := strconv.ParseBool(string(v))
			if err != nil {
				return c, fmt.Errorf("the Secret kube-system/%s key %s %q is not true or false", name, key, v)
			}
			*field = b
		}
	}
	if v, ok := data["etcd-s3-timeout"]; ok {
		d, err := time.ParseDuration(string(v))
		if err != nil {
			return c, fmt.Errorf("the Secret kube-system/%s key etcd-s3-timeout %q is not a duration, e.g. 5m", name, v)
		}
		c.Timeout = d
	}
	if v, ok := data["etcd-s3-endpoint-ca"]; ok {
		c.EndpointCA, c.EndpointCAData = "", v
	}
	if c.Bucket == "" {
		return c, fmt.Errorf("the Secret kube-system/%s has no etcd-s3-bucket key: add it, or give --etcd-s3-bucket", name)
	}
	return c, nil
}

// Open resolves c's config Secret, if any, and connects to its bucket.
func Open(ctx context.Context, c config.S3, adminKubeconfig string) (*Store, error) {
	c, err := Resolve(ctx, c, adminKubeconfig)
	if err != nil {
		return nil, err
	}
	return New(ctx, c)
}
