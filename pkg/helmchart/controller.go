package helmchart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	helmv1 "github.com/k3s-io/helm-controller/pkg/apis/helm.cattle.io/v1"
	"github.com/k3s-io/helm-controller/pkg/crds"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

var (
	chartsResource  = helmv1.SchemeGroupVersion.WithResource("helmcharts")
	configsResource = helmv1.SchemeGroupVersion.WithResource("helmchartconfigs")
)

const (
	// finalizer holds a deleted HelmChart until its release is uninstalled.
	finalizer = "helm.regente.io/uninstall"
	// resync re-reads every HelmChart now and then, so a changed values
	// Secret (which is not watched) is applied; an unchanged chart costs
	// one release lookup.
	resync = 10 * time.Minute
)

// Config configures the controller.
type Config struct {
	// Kubeconfig is a cluster-admin identity: charts may hold any kind.
	Kubeconfig string
	// StaticDir is <data-dir>/server/static; a spec.chart of
	// https://%{KUBERNETES_API}%/static/<path> is read from there.
	StaticDir string
	// StateDir holds Helm's repository cache and registry settings.
	StateDir string
}

// Controller is the component.
type Controller struct {
	component.Runner
	cfg Config
}

var (
	_ component.Component = (*Controller)(nil)
	_ component.Failer    = (*Controller)(nil)
)

// New returns the component.
func New(cfg Config) *Controller { return &Controller{cfg: cfg} }

// Name implements component.Component.
func (c *Controller) Name() string { return "helm-controller" }

// Start installs the CRDs, so that manifests holding HelmCharts apply, and
// then reconciles HelmCharts until Stop.
func (c *Controller) Start(ctx context.Context) error {
	// static/charts is where k3s users drop chart archives.
	for _, dir := range []string{filepath.Join(c.cfg.StaticDir, "charts"), c.cfg.StateDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	restCfg, client, err := kubeconfig.Client(c.cfg.Kubeconfig)
	if err != nil {
		return err
	}
	if err := ensureCRDs(ctx, restCfg); err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("dynamic client for %s: %w", c.cfg.Kubeconfig, err)
	}
	logger := klog.FromContext(ctx).WithValues("component", "helm-controller")
	return c.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		r := &reconciler{cfg: c.cfg, kubeconfig: c.cfg.Kubeconfig, client: client, dyn: dyn}
		return func() error { return r.run(ctx) }, nil
	})
}

// ensureCRDs creates or updates helm-controller's CRDs and waits until the
// API serves them.
func ensureCRDs(ctx context.Context, restCfg *rest.Config) error {
	client, err := apiextclient.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	list, err := crds.List()
	if err != nil {
		return fmt.Errorf("read the HelmChart CRDs: %w", err)
	}
	api := client.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range list {
		current, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = api.Create(ctx, crd, metav1.CreateOptions{})
		case err == nil:
			crd.ResourceVersion = current.ResourceVersion
			_, err = api.Update(ctx, crd, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("install CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range list {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			current, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, c := range current.Status.Conditions {
				if c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s to be established: %w", crd.Name, err)
		}
	}
	return nil
}

// reconciler is one run of the controller.
type reconciler struct {
	cfg        Config
	kubeconfig string
	client     kubernetes.Interface
	dyn        dynamic.Interface
	charts     cache.GenericLister
	configs    cache.GenericLister
}

func (r *reconciler) run(ctx context.Context) error {
	factory := dynamicinformer.NewDynamicSharedInformerFactory(r.dyn, resync)
	charts := factory.ForResource(chartsResource)
	configs := factory.ForResource(configsResource)
	r.charts, r.configs = charts.Lister(), configs.Lister()

	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "helmcharts"})
	defer queue.ShutDown()
	// A HelmChartConfig configures the HelmChart of the same name and
	// namespace, so both kinds enqueue the same key.
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}
	for _, informer := range []informers{charts, configs} {
		if _, err := informer.Informer().AddEventHandler(handler); err != nil {
			return fmt.Errorf("watch %s: %w", chartsResource.Resource, err)
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for gvr, synced := range factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sync the %s cache", gvr.Resource)
		}
	}
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	// One worker: Helm actions on one release must not overlap, and
	// installs are rare enough that ordering them costs nothing.
	for {
		key, shutdown := queue.Get()
		if shutdown {
			return nil
		}
		err := r.sync(ctx, key)
		switch {
		case err == nil:
			queue.Forget(key)
		case errors.Is(err, errNoRetry):
			queue.Forget(key)
		default:
			if ctx.Err() == nil {
				klog.FromContext(ctx).Error(err, "Cannot reconcile HelmChart; retrying", "helmChart", key)
				queue.AddRateLimited(key)
			}
		}
		queue.Done(key)
	}
}

type informers interface {
	Informer() cache.SharedIndexInformer
}

// errNoRetry marks a failure that only a change to the HelmChart can fix
// (the failure policy is abort, or the spec is invalid).
var errNoRetry = errors.New("not retried until the HelmChart changes")

// sync brings one HelmChart's release in line with its spec.
func (r *reconciler) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("%w: %v", errNoRetry, err)
	}
	obj, err := r.charts.ByNamespace(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	u := obj.(*unstructured.Unstructured)
	var chart helmv1.HelmChart
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &chart); err != nil {
		return fmt.Errorf("%w: decode HelmChart %s: %v", errNoRetry, key, err)
	}
	logger := klog.FromContext(ctx).WithValues("helmChart", key)
	ctx = klog.NewContext(ctx, logger)

	if chart.DeletionTimestamp != nil {
		if !hasFinalizer(u) {
			return nil
		}
		if err := r.uninstall(ctx, &chart); err != nil {
			return err
		}
		return r.setFinalizer(ctx, u, false)
	}
	if !hasFinalizer(u) {
		// The update triggers the next sync, which does the work.
		return r.setFinalizer(ctx, u, true)
	}

	var config *helmv1.HelmChartConfig
	if obj, err := r.configs.ByNamespace(namespace).Get(name); err == nil {
		config = &helmv1.HelmChartConfig{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.(*unstructured.Unstructured).Object, config); err != nil {
			return fmt.Errorf("%w: decode HelmChartConfig %s: %v", errNoRetry, key, err)
		}
	} else if !apierrors.IsNotFound(err) {
		return err
	}

	syncErr := r.release(ctx, &chart, config)
	if err := r.setStatus(ctx, u, syncErr); err != nil {
		return err
	}
	return syncErr
}

func hasFinalizer(u *unstructured.Unstructured) bool {
	for _, f := range u.GetFinalizers() {
		if f == finalizer {
			return true
		}
	}
	return false
}

func (r *reconciler) setFinalizer(ctx context.Context, u *unstructured.Unstructured, present bool) error {
	u = u.DeepCopy()
	var finalizers []string
	for _, f := range u.GetFinalizers() {
		if f != finalizer {
			finalizers = append(finalizers, f)
		}
	}
	if present {
		finalizers = append(finalizers, finalizer)
	}
	u.SetFinalizers(finalizers)
	_, err := r.dyn.Resource(chartsResource).Namespace(u.GetNamespace()).Update(ctx, u, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update the finalizer of HelmChart %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// setStatus records the outcome as the Failed condition, as k3s's
// controller does. status.jobName stays empty: there is no job.
func (r *reconciler) setStatus(ctx context.Context, u *unstructured.Unstructured, syncErr error) error {
	cond := helmv1.HelmChartCondition{Type: helmv1.HelmChartFailed, Status: "False", Reason: "Deployed"}
	if syncErr != nil {
		cond.Status, cond.Reason, cond.Message = "True", "Error", syncErr.Error()
	}
	status := helmv1.HelmChartStatus{Conditions: []helmv1.HelmChartCondition{cond}}
	want, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&status)
	if err != nil {
		return err
	}
	current, _, _ := unstructured.NestedMap(u.Object, "status")
	if equalJSON(current, want) {
		return nil
	}
	u = u.DeepCopy()
	u.Object["status"] = want
	_, err = r.dyn.Resource(chartsResource).Namespace(u.GetNamespace()).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update the status of HelmChart %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return nil
}
