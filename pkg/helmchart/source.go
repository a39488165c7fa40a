package helmchart

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	"helm.sh/helm/v4/pkg/action"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/registry"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// staticPrefix is how k3s users point a HelmChart at a chart in the
// server's static directory.
const staticPrefix = "https://%{KUBERNETES_API}%/static/"

// chartSource says where a HelmChart's chart comes from.
type chartSource struct {
	archive []byte // spec.chartContent, decoded
	file    string // a chart in the static directory
	// digest is the static file's SHA-256: replacing the file upgrades
	// the release. Inline and remote charts are identified by the spec.
	digest string
}

// source resolves where chart's chart comes from and checks what can be
// checked without a download.
func (r *reconciler) source(chart *helmv1.HelmChart) (chartSource, error) {
	spec := chart.Spec
	id := chart.Namespace + "/" + chart.Name
	if spec.ChartContent != "" {
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(spec.ChartContent))
		if err != nil {
			return chartSource{}, fmt.Errorf("%w: spec.chartContent of HelmChart %s is not base64 (encode the .tgz with base64 -w0): %v", errNoRetry, id, err)
		}
		return chartSource{archive: data}, nil
	}
	if rest, ok := strings.CutPrefix(spec.Chart, staticPrefix); ok {
		file, err := staticFile(r.cfg.StaticDir, rest)
		if err != nil {
			return chartSource{}, fmt.Errorf("%w: spec.chart of HelmChart %s: %v", errNoRetry, id, err)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return chartSource{}, fmt.Errorf("spec.chart of HelmChart %s: read %s (put the chart archive there): %w", id, file, err)
		}
		sum := sha256.Sum256(data)
		return chartSource{file: file, digest: hex.EncodeToString(sum[:])}, nil
	}
	switch {
	case spec.Chart == "":
		return chartSource{}, fmt.Errorf("%w: HelmChart %s has neither spec.chart nor spec.chartContent", errNoRetry, id)
	case spec.Repo == "" && !isURL(spec.Chart):
		return chartSource{}, fmt.Errorf("%w: spec.chart %q of HelmChart %s needs spec.repo, or must be an https://, http:// or oci:// URL, or %s<path> for a chart in %s",
			errNoRetry, spec.Chart, id, staticPrefix, r.cfg.StaticDir)
	}
	return chartSource{}, nil
}

// staticFile returns the file rel names under dir, refusing paths that
// leave it.
func staticFile(dir, rel string) (string, error) {
	clean := filepath.Clean("/" + rel)
	if clean == "/" || strings.Contains(rel, "..") {
		return "", fmt.Errorf("%q is not a file under the static directory %s", rel, dir)
	}
	return filepath.Join(dir, clean), nil
}

func isURL(s string) bool {
	for _, scheme := range []string{"https://", "http://", "oci://"} {
		if strings.HasPrefix(s, scheme) {
			return true
		}
	}
	return false
}

// load reads the chart, downloading it from its repository or URL when it
// is not inline or static.
func (s chartSource) load(ctx context.Context, r *reconciler, cfg *action.Configuration, chart *helmv1.HelmChart) (*chartv2.Chart, error) {
	id := chart.Namespace + "/" + chart.Name
	var (
		ch  *chartv2.Chart
		err error
	)
	switch {
	case s.archive != nil:
		ch, err = loader.LoadArchive(bytes.NewReader(s.archive))
		if err != nil {
			return nil, fmt.Errorf("%w: spec.chartContent of HelmChart %s is not a chart archive: %v", errNoRetry, id, err)
		}
	case s.file != "":
		ch, err = loader.Load(s.file)
		if err != nil {
			return nil, fmt.Errorf("%w: %s (spec.chart of HelmChart %s) is not a chart: %v", errNoRetry, s.file, id, err)
		}
	default:
		ch, err = r.download(ctx, cfg, chart)
		if err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// download fetches a repository or URL chart with Helm's own locator, into
// a cache under the state directory.
func (r *reconciler) download(ctx context.Context, cfg *action.Configuration, chart *helmv1.HelmChart) (*chartv2.Chart, error) {
	spec := chart.Spec
	id := chart.Namespace + "/" + chart.Name
	settings := cli.New()
	settings.RepositoryCache = filepath.Join(r.cfg.StateDir, "cache")
	settings.RepositoryConfig = filepath.Join(r.cfg.StateDir, "repositories.yaml")
	settings.RegistryConfig = filepath.Join(r.cfg.StateDir, "registry.json")
	if err := os.MkdirAll(settings.RepositoryCache, 0o700); err != nil {
		return nil, fmt.Errorf("create the Helm cache: %w", err)
	}

	var username, password string
	if spec.AuthSecret != nil {
		secret, err := r.client.CoreV1().Secrets(chart.Namespace).Get(ctx, spec.AuthSecret.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("read spec.authSecret %s of HelmChart %s: %w", spec.AuthSecret.Name, id, err)
		}
		username, password = string(secret.Data["username"]), string(secret.Data["password"])
	}
	regOpts := []registry.ClientOption{registry.ClientOptCredentialsFile(settings.RegistryConfig)}
	if spec.PlainHTTP {
		regOpts = append(regOpts, registry.ClientOptPlainHTTP())
	}
	if username != "" {
		regOpts = append(regOpts, registry.ClientOptBasicAuth(username, password))
	}
	regClient, err := registry.NewClient(regOpts...)
	if err != nil {
		return nil, fmt.Errorf("set up the chart registry client: %w", err)
	}
	cfg.RegistryClient = regClient

	in := action.NewInstall(cfg)
	in.RepoURL = spec.Repo
	in.Version = spec.Version
	in.InsecureSkipTLSVerify = spec.InsecureSkipTLSVerify
	in.PlainHTTP = spec.PlainHTTP
	in.PassCredentialsAll = spec.AuthPassCredentials
	in.Username, in.Password = username, password
	ca, err := r.repoCA(ctx, chart)
	if err != nil {
		return nil, err
	}
	if ca != "" {
		f, err := os.CreateTemp(r.cfg.StateDir, "ca-*.pem")
		if err != nil {
			return nil, fmt.Errorf("write the repository CA of HelmChart %s: %w", id, err)
		}
		defer os.Remove(f.Name())
		if _, err := f.WriteString(ca); err != nil {
			f.Close()
			return nil, fmt.Errorf("write the repository CA of HelmChart %s: %w", id, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write the repository CA of HelmChart %s: %w", id, err)
		}
		in.CaFile = f.Name()
	}
	path, err := in.LocateChart(spec.Chart, settings)
	if err != nil {
		return nil, fmt.Errorf("download chart %q (repo %q, version %q) of HelmChart %s: %w", spec.Chart, spec.Repo, spec.Version, id, err)
	}
	ch, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load chart %s of HelmChart %s: %w", path, id, err)
	}
	return ch, nil
}

// repoCA returns spec.repoCA and the certificates of spec.repoCAConfigMap.
func (r *reconciler) repoCA(ctx context.Context, chart *helmv1.HelmChart) (string, error) {
	ca := chart.Spec.RepoCA
	if ref := chart.Spec.RepoCAConfigMap; ref != nil {
		cm, err := r.client.CoreV1().ConfigMaps(chart.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("read spec.repoCAConfigMap %s of HelmChart %s/%s: %w", ref.Name, chart.Namespace, chart.Name, err)
		}
		for _, v := range cm.Data {
			ca += "\n" + v
		}
	}
	return strings.TrimSpace(ca), nil
}
