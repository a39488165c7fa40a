package deploy

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

// Values are what the add-on templates may use.
type Values struct {
	ClusterDNS    string
	ClusterDomain string
	StorageDir    string // where local-path volumes live on each node
	Images        Images
}

// Images are the add-ons' image references.
type Images struct {
	CoreDNS         string
	MetricsServer   string
	LocalPath       string
	LocalPathHelper string
}

// Config says where the manifests live and which add-ons to stage.
type Config struct {
	Dir        string // <data-dir>/server/manifests
	Kubeconfig string // admin
	Addons     fs.FS  // the embedded add-on templates
	Values     Values
	Disabled   []string // add-on names from --disable
	// Controllers are add-ons that run in regente rather than from a
	// manifest (servicelb): --disable takes their names too.
	Controllers []string
}

// Deploy is the component that stages the add-ons and runs the controller.
type Deploy struct {
	component.Runner
	cfg Config
}

var (
	_ component.Component = (*Deploy)(nil)
	_ component.Failer    = (*Deploy)(nil)
)

// New returns the deploy component.
func New(cfg Config) *Deploy { return &Deploy{cfg: cfg} }

// Name implements component.Component.
func (d *Deploy) Name() string { return "deploy" }

// k3sOnly reports the add-ons k3s deploys that regente does not carry
// (yet): config files written for k3s disable them, and must start
// regente unchanged.
func k3sOnly(name string) bool { return name == "traefik" }

var _ component.Initer = (*Deploy)(nil)

// Init checks --disable against the add-ons there are.
func (d *Deploy) Init(ctx context.Context) error {
	names := append(Names(d.cfg.Addons), d.cfg.Controllers...)
	for _, n := range d.cfg.Disabled {
		if k3sOnly(n) {
			klog.FromContext(ctx).Info("Nothing to disable: regente does not deploy this k3s add-on", "component", "deploy", "disable", n)
			continue
		}
		if !slices.Contains(names, n) {
			return fmt.Errorf("--disable %q: no such add-on; use one of %s", n, strings.Join(names, ", "))
		}
	}
	return nil
}

// Start stages the add-ons and applies the manifests dir until Stop.
func (d *Deploy) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("component", "deploy")
	restCfg, client, err := kubeconfig.Client(d.cfg.Kubeconfig)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	staged, err := Stage(d.cfg.Addons, d.cfg.Dir, d.cfg.Values, d.cfg.Disabled)
	if err != nil {
		return err
	}
	logger.Info("Add-ons staged", "dir", d.cfg.Dir, "addons", staged, "disabled", d.cfg.Disabled)
	c := newController(d.cfg.Dir, client, dyn)
	return d.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		return func() error { return c.run(ctx) }, nil
	})
}
