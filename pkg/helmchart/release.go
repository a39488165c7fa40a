package helmchart

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/go-logr/logr"
	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/klog/v2"
)

const (
	// fingerprintLabel on a Helm release holds the fingerprint of the
	// inputs it was made from (see fingerprint).
	fingerprintLabel = "helm.regente.io/fingerprint"
	defaultTimeout   = 5 * time.Minute
	// maxHistory bounds the release Secrets an often-changed chart keeps.
	maxHistory = 10
)

// target is where a HelmChart's release lives.
type target struct {
	name, namespace, driver string
}

func targetOf(chart *helmv1.HelmChart) target {
	t := target{name: chart.Name, namespace: chart.Spec.TargetNamespace, driver: string(chart.Spec.Driver)}
	if t.namespace == "" {
		t.namespace = chart.Namespace
	}
	if t.driver == "" {
		t.driver = string(helmv1.HelmDriverSecret)
	}
	return t
}

// release installs, upgrades or reinstalls chart's release as its spec,
// config and failure policy say.
func (r *reconciler) release(ctx context.Context, chart *helmv1.HelmChart, config *helmv1.HelmChartConfig) error {
	logger := klog.FromContext(ctx)
	t := targetOf(chart)
	opts := optionsOf(chart, config)
	vals, err := r.values(ctx, chart, config)
	if err != nil {
		return err
	}
	src, err := r.source(chart)
	if err != nil {
		return err
	}
	fp, err := fingerprint(chart.Spec, config, vals, src.digest)
	if err != nil {
		return err
	}
	cfg, err := r.helm(ctx, t)
	if err != nil {
		return err
	}
	last, deployedBefore, err := history(cfg, t.name)
	if err != nil {
		return err
	}

	install := last == nil || last.Info.Status == rcommon.StatusUninstalled
	switch {
	case install:
	case last.Info.Status == rcommon.StatusDeployed:
		if last.Labels[fingerprintLabel] == fp {
			return nil
		}
	case opts.failurePolicy == helmv1.FailurePolicyAbort:
		return fmt.Errorf("%w: release %s/%s is %s and failurePolicy is abort: fix it by hand (helm rollback or helm uninstall), or change failurePolicy",
			errNoRetry, t.namespace, t.name, last.Info.Status)
	case opts.failurePolicy == helmv1.FailurePolicyRetry && last.Labels[fingerprintLabel] == fp:
		return fmt.Errorf("%w: release %s/%s is %s; with failurePolicy retry it is retried when the HelmChart or its config changes",
			errNoRetry, t.namespace, t.name, last.Info.Status)
	case opts.failurePolicy == helmv1.FailurePolicyRetry && deployedBefore:
	default:
		// reinstall, the default: start over from a clean uninstall.
		logger.Info("Reinstalling Helm release", "release", t.name, "namespace", t.namespace, "status", last.Info.Status)
		if err := uninstall(cfg, t.name, opts.timeout); err != nil {
			return err
		}
		install = true
	}

	ch, err := src.load(ctx, r, cfg, chart)
	if err != nil {
		return err
	}
	labels := map[string]string{fingerprintLabel: fp}
	if install {
		in := action.NewInstall(cfg)
		in.ReleaseName = t.name
		in.Namespace = t.namespace
		in.CreateNamespace = chart.Spec.CreateNamespace
		in.Timeout = opts.timeout
		in.WaitStrategy = kube.HookOnlyStrategy
		in.TakeOwnership = chart.Spec.TakeOwnership
		in.ServerSideApply = opts.serverSide != helmv1.ServerSideFalse
		in.ForceConflicts = opts.forceConflicts
		in.Labels = labels
		if _, err := in.RunWithContext(ctx, ch, vals); err != nil {
			return fmt.Errorf("install Helm release %s/%s: %w", t.namespace, t.name, err)
		}
		logger.Info("Installed Helm release", "release", t.name, "namespace", t.namespace, "chart", ch.Metadata.Name, "version", ch.Metadata.Version)
		return nil
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = t.namespace
	up.Timeout = opts.timeout
	up.WaitStrategy = kube.HookOnlyStrategy
	up.TakeOwnership = chart.Spec.TakeOwnership
	up.ServerSideApply = string(opts.serverSide)
	up.ForceConflicts = opts.forceConflicts
	up.MaxHistory = maxHistory
	// The HelmChart is the whole truth: with neither reset nor reuse, Helm
	// would keep the previous values when the new set is empty.
	up.ResetValues = true
	up.Labels = labels
	if _, err := up.RunWithContext(ctx, t.name, ch, vals); err != nil {
		return fmt.Errorf("upgrade Helm release %s/%s: %w", t.namespace, t.name, err)
	}
	logger.Info("Upgraded Helm release", "release", t.name, "namespace", t.namespace, "chart", ch.Metadata.Name, "version", ch.Metadata.Version)
	return nil
}

// uninstall removes a deleted HelmChart's release.
func (r *reconciler) uninstall(ctx context.Context, chart *helmv1.HelmChart) error {
	t := targetOf(chart)
	cfg, err := r.helm(ctx, t)
	if err != nil {
		return err
	}
	if err := uninstall(cfg, t.name, optionsOf(chart, nil).timeout); err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Uninstalled Helm release", "release", t.name, "namespace", t.namespace)
	return nil
}

func uninstall(cfg *action.Configuration, name string, timeout time.Duration) error {
	un := action.NewUninstall(cfg)
	un.IgnoreNotFound = true
	un.Timeout = timeout
	un.WaitStrategy = kube.HookOnlyStrategy
	if _, err := un.Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstall Helm release %s: %w", name, err)
	}
	return nil
}

// helm returns a Helm action configuration for t's namespace and storage
// driver, logging through klog.
func (r *reconciler) helm(ctx context.Context, t target) (*action.Configuration, error) {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &r.kubeconfig
	flags.Namespace = &t.namespace
	cfg := action.NewConfiguration()
	cfg.SetLogger(logr.ToSlogHandler(klog.FromContext(ctx)))
	if err := cfg.Init(flags, t.namespace, t.driver); err != nil {
		return nil, fmt.Errorf("set up Helm for namespace %s: %w", t.namespace, err)
	}
	return cfg, nil
}

// history returns the newest revision of the release, if any, and whether
// any revision was ever deployed.
func history(cfg *action.Configuration, name string) (*releasev1.Release, bool, error) {
	revisions, err := action.NewHistory(cfg).Run(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the history of Helm release %s: %w", name, err)
	}
	var last *releasev1.Release
	deployed := false
	for _, rev := range revisions {
		rel, ok := rev.(*releasev1.Release)
		if !ok {
			return nil, false, fmt.Errorf("read the history of Helm release %s: unexpected release type %T", name, rev)
		}
		if rel.Info != nil && (rel.Info.Status == rcommon.StatusDeployed || rel.Info.Status == rcommon.StatusSuperseded) {
			deployed = true
		}
		if last == nil || rel.Version > last.Version {
			last = rel
		}
	}
	if last != nil && last.Info == nil {
		return nil, false, fmt.Errorf("read the history of Helm release %s: revision %d has no status", name, last.Version)
	}
	return last, deployed, nil
}

// options are the settings a HelmChartConfig may override.
type options struct {
	failurePolicy  helmv1.FailurePolicy
	serverSide     helmv1.ServerSide
	forceConflicts bool
	timeout        time.Duration
}

func optionsOf(chart *helmv1.HelmChart, config *helmv1.HelmChartConfig) options {
	o := options{
		failurePolicy:  chart.Spec.FailurePolicy,
		serverSide:     chart.Spec.ServerSide,
		forceConflicts: chart.Spec.ForceConflicts,
		timeout:        defaultTimeout,
	}
	if chart.Spec.Timeout != nil && chart.Spec.Timeout.Duration > 0 {
		o.timeout = chart.Spec.Timeout.Duration
	}
	if config != nil {
		if config.Spec.FailurePolicy != "" {
			o.failurePolicy = config.Spec.FailurePolicy
		}
		if config.Spec.ServerSide != "" {
			o.serverSide = config.Spec.ServerSide
		}
		if config.Spec.ForceConflicts != nil {
			o.forceConflicts = *config.Spec.ForceConflicts
		}
	}
	if o.failurePolicy == "" {
		o.failurePolicy = helmv1.FailurePolicyReinstall
	}
	if o.serverSide == "" {
		o.serverSide = helmv1.ServerSideAuto
	}
	return o
}

// fingerprint hashes everything that shapes a release: the HelmChart's
// spec, its config's, the merged values (which include values Secrets) and
// the digest of a chart read from the static directory. A release whose
// label holds the same fingerprint is up to date.
func fingerprint(spec helmv1.HelmChartSpec, config *helmv1.HelmChartConfig, vals map[string]any, chartDigest string) (string, error) {
	var configSpec *helmv1.HelmChartConfigSpec
	if config != nil {
		configSpec = &config.Spec
	}
	data, err := json.Marshal(struct {
		Spec   helmv1.HelmChartSpec        `json:"spec"`
		Config *helmv1.HelmChartConfigSpec `json:"config"`
		Values map[string]any              `json:"values"`
		Chart  string                      `json:"chart"`
	}{spec, configSpec, vals, chartDigest})
	if err != nil {
		return "", fmt.Errorf("fingerprint the HelmChart: %w", err)
	}
	sum := sha256.Sum256(data)
	// A label value holds at most 63 characters.
	return hex.EncodeToString(sum[:20]), nil
}

func equalJSON(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}
