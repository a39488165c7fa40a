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
	Ingress         string
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

// ourName maps the name k3s gives an add-on to regente's where they
// differ, so that a config file written for k3s disables the same thing.
// regente's ingress controller holds Traefik's place and serves the
// traefik IngressClass too: a k3s user who disables Traefik, to install
// another controller, wants it off as well.
func ourName(k3s string) string {
	if k3s == "traefik" {
		return "ingress"
	}
	return k3s
}

// New returns the deploy component.
func New(cfg Config) *Deploy {
	cfg.Disabled = slices.Clone(cfg.Disabled)
	for i, n := range cfg.Disabled {
		cfg.Disabled[i] = ourName(n)
	}
	return &Deploy{cfg: cfg}
}

// Name implements component.Component.
func (d *Deploy) Name() string { return "deploy" }

var _ component.Initer = (*Deploy)(nil)

// Init checks --disable against the add-ons there are.
func (d *Deploy) Init(ctx context.Context) error {
	names := append(Names(d.cfg.Addons), d.cfg.Controllers...)
	for _, n := range d.cfg.Disabled {
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
