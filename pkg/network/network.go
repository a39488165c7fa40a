package network

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flannel-io/flannel/pkg/backend"
	_ "github.com/flannel-io/flannel/pkg/backend/hostgw" // registers host-gw
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan"  // registers vxlan
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/ipmatch"
	"github.com/flannel-io/flannel/pkg/subnet"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	"github.com/flannel-io/flannel/pkg/trafficmngr"
	"github.com/flannel-io/flannel/pkg/trafficmngr/iptables"
	"github.com/flannel-io/flannel/pkg/trafficmngr/nftables"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/kubeconfig"
)

// BackendNone leaves pod networking to a CNI the user installs.
const BackendNone = "none"

// annotationPrefix is flannel's own, so nodes read the same to flannel's
// tools and to a flannel DaemonSet that might replace ours.
const annotationPrefix = "flannel.alpha.coreos.com"

// resyncSeconds is how often flannel re-checks its masquerade and forward
// rules, flannel's default.
const resyncSeconds = 5

// Config says which backend to run and where its files go.
type Config struct {
	NodeName    string
	NodeIP      string // picks the interface when Iface is empty
	Iface       string // --flannel-iface
	Backend     string // vxlan, host-gw or BackendNone; checked by the config
	ClusterCIDR string
	Kubeconfig  string // flannel's kubeconfig (certs.FlannelUser): it reads all nodes, annotates its own
	ConfDir     string // net-conf.json
	RunDir      string // subnet.env
	CNIConfDir  string // containerd's CNI conf_dir
	IPAMDir     string // host-local's allocation state
	// NFTables reports, once every Init has run, whether kube-proxy uses
	// nftables; flannel's rules then go there too.
	NFTables func() bool
}

// Flannel is the pod network component.
type Flannel struct {
	component.Runner
	cfg Config
}

var (
	_ component.Component = (*Flannel)(nil)
	_ component.Failer    = (*Flannel)(nil)
)

// New returns the network component.
func New(cfg Config) *Flannel { return &Flannel{cfg: cfg} }

// Name implements component.Component.
func (f *Flannel) Name() string { return "flannel" }

// HostTools are the programs the CNI plugins and flannel run on the host,
// each with the Debian/Ubuntu package that has it; `regente check-config`
// reports the same list.
func HostTools() map[string]string {
	return map[string]string{"iptables": "iptables"}
}

var _ component.Initer = (*Flannel)(nil)

// Init checks the host tools and kernel features pod
// networking needs, and turns on the kernel switches it may (ip_forward,
// bridge netfilter), before anything starts; it writes nothing under the
// data dir.
func (f *Flannel) Init(context.Context) error {
	if f.cfg.Backend == BackendNone {
		return nil
	}
	if err := ensureKernelSettings("/proc/sys"); err != nil {
		return err
	}
	for program, pkg := range HostTools() {
		if _, err := exec.LookPath(program); err != nil {
			return fmt.Errorf("%s not found in PATH: pod networking needs it; install the %q package "+
				"(apt-get install %s, dnf install %s, apk add %s), or run with --disable-agent", program, pkg, pkg, pkg, pkg)
		}
	}
	return nil
}

// Start runs flannel in the background: it waits for the node's pod CIDR
// (allocated by the controller-manager), takes it as its lease, sets up
// the backend and writes the CNI config; until then the node reports
// NetworkReady=false, as upstream. A failure ends the process, since pods
// cannot get a network without it.
func (f *Flannel) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("component", "flannel")
	if f.cfg.Backend == BackendNone {
		logger.Info("Flannel is off (--flannel-backend=none): pods get a network once you install a CNI plugin", "cniConfDir", f.cfg.CNIConfDir)
		return nil
	}
	return f.Runner.Start(klog.NewContext(ctx, logger), func(ctx context.Context) (func() error, error) {
		netConf, err := f.writeNetConf()
		if err != nil {
			return nil, err
		}
		// flannel's Kubernetes subnet manager learns its node's name only
		// from the environment. The agent runs one node per process.
		if err := os.Setenv("NODE_NAME", f.cfg.NodeName); err != nil {
			return nil, fmt.Errorf("set NODE_NAME for flannel: %w", err)
		}
		return func() error { return f.run(ctx, netConf) }, nil
	})
}

func (f *Flannel) writeNetConf() (string, error) {
	conf := map[string]any{
		"Network":        f.cfg.ClusterCIDR,
		"EnableIPv4":     true,
		"EnableNFTables": f.cfg.NFTables != nil && f.cfg.NFTables(),
		"Backend":        map[string]string{"Type": f.cfg.Backend},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(f.cfg.ConfDir, 0o755); err != nil {
		return "", fmt.Errorf("create flannel's config dir: %w", err)
	}
	path := filepath.Join(f.cfg.ConfDir, "net-conf.json")
	if err := atomicfile.Write(atomicfile.File{Path: path, Data: data, Mode: 0o644}); err != nil {
		return "", fmt.Errorf("write flannel net-conf: %w", err)
	}
	return path, nil
}

// run follows flannel's own main: subnet manager, interface, backend,
// traffic rules, subnet file; then our CNI config, and the backend runs
// until ctx ends.
func (f *Flannel) run(ctx context.Context, netConf string) error {
	logger := klog.FromContext(ctx)
	if err := f.waitPodCIDR(ctx); err != nil {
		return err
	}
	sm, err := kube.NewSubnetManager(ctx, "", f.cfg.Kubeconfig, annotationPrefix, netConf, false)
	if err != nil {
		return fmt.Errorf("start flannel's subnet manager: %w", err)
	}
	config, err := sm.GetNetworkConfig(ctx)
	if err != nil {
		return fmt.Errorf("read flannel's network config: %w", err)
	}
	ext, err := f.externalInterface(config)
	if err != nil {
		return err
	}
	be, err := backend.NewManager(ctx, sm, ext).GetBackend(config.BackendType)
	if err != nil {
		return fmt.Errorf("flannel backend %s: %w", config.BackendType, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	bn, err := be.RegisterNetwork(ctx, &wg, config)
	if err != nil {
		return fmt.Errorf("register the flannel %s network on %s: %w", config.BackendType, ext.Iface.Name, err)
	}

	subnetFile := filepath.Join(f.cfg.RunDir, "subnet.env")
	prevNetwork, prevSubnet := readSubnetFile(subnetFile)
	// Rules of the other kind, left by an earlier run with the other
	// kube-proxy mode, would masquerade twice.
	if err := newTrafficManager(!config.EnableNFTables).CleanUp(ctx); err != nil {
		logger.V(2).Info("No earlier flannel rules to clean up", "err", err)
	}
	tm := newTrafficManager(config.EnableNFTables)
	if err := tm.Init(ctx); err != nil {
		return fmt.Errorf("set up flannel's traffic rules: %w", err)
	}
	if err := tm.SetupAndEnsureMasqRules(ctx, config.Network, prevSubnet, prevNetwork,
		ip.IP6Net{}, ip.IP6Net{}, ip.IP6Net{}, bn.Lease(), resyncSeconds, false); err != nil {
		return fmt.Errorf("set up flannel's masquerade rules: %w", err)
	}
	tm.SetupAndEnsureForwardRules(ctx, config.Network, ip.IP6Net{}, resyncSeconds)

	if err := sm.HandleSubnetFile(subnetFile, config, true, bn.Lease().Subnet, bn.Lease().IPv6Subnet, bn.MTU()); err != nil {
		return fmt.Errorf("write %s: %w", subnetFile, err)
	}
	if err := f.writeCNIConfig(config.Network, bn.Lease().Subnet, bn.MTU()); err != nil {
		return fmt.Errorf("write the CNI config: %w", err)
	}
	logger.Info("Pod network configured", "backend", config.BackendType, "podCIDR", bn.Lease().Subnet.String(),
		"interface", ext.Iface.Name, "mtu", bn.MTU())

	wg.Go(func() { bn.Run(ctx) })
	if err := sm.CompleteLease(ctx, bn.Lease(), &wg); err != nil {
		return fmt.Errorf("complete flannel's lease: %w", err)
	}
	<-ctx.Done()
	return nil
}

// waitPodCIDR waits for the controller-manager to give the node a pod
// CIDR, which flannel's Kubernetes subnet manager takes as its lease and
// otherwise refuses.
func (f *Flannel) waitPodCIDR(ctx context.Context) error {
	_, client, err := kubeconfig.Client(f.cfg.Kubeconfig)
	if err != nil {
		return err
	}
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		node, err := client.CoreV1().Nodes().Get(ctx, f.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil // not registered yet
		}
		return node.Spec.PodCIDR != "", nil
	})
}

// externalInterface picks the interface flannel sends node-to-node
// traffic over: --flannel-iface, else the one holding the node IP.
func (f *Flannel) externalInterface(config *subnet.Config) (*backend.ExternalInterface, error) {
	stack, err := ipmatch.GetIPFamily(config.EnableIPv4, config.EnableIPv6)
	if err != nil {
		return nil, fmt.Errorf("flannel IP family: %w", err)
	}
	want, flag := f.cfg.Iface, "--flannel-iface"
	if want == "" {
		want, flag = f.cfg.NodeIP, "--node-ip"
	}
	ext, err := ipmatch.LookupExtIface(want, "", "", stack, ipmatch.PublicIPOpts{})
	if err != nil {
		return nil, fmt.Errorf("find the interface for flannel (%s %s): %w", flag, want, err)
	}
	return ext, nil
}

func newTrafficManager(useNFTables bool) trafficmngr.TrafficManager {
	if useNFTables {
		return &nftables.NFTablesManager{}
	}
	return &iptables.IPTablesManager{}
}

// readSubnetFile returns the network and subnet an earlier run wrote, so
// flannel can replace its rules when either changed; zero values when
// there was none.
func readSubnetFile(path string) (network, subnet ip.IP4Net) {
	data, err := os.ReadFile(path)
	if err != nil {
		return network, subnet
	}
	for line := range strings.Lines(string(data)) {
		key, value, _ := strings.Cut(strings.TrimSpace(line), "=")
		var target *ip.IP4Net
		switch key {
		case "FLANNEL_NETWORK":
			target = &network
		case "FLANNEL_SUBNET":
			target = &subnet
		default:
			continue
		}
		if err := target.UnmarshalJSON([]byte(`"` + value + `"`)); err != nil {
			*target = ip.IP4Net{}
		}
	}
	return network, subnet
}

// writeCNIConfig writes what flannel's CNI plugin would hand its delegate:
// a bridge on the node's lease with host-local IPAM, the flannel MTU and
// a route to the whole cluster network, followed by portmap and
// bandwidth. flannel masquerades, so the bridge does not.
func (f *Flannel) writeCNIConfig(network, lease ip.IP4Net, mtu int) error {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "regente",
		"plugins": []map[string]any{
			{
				"type": "bridge", "bridge": "regente0", "isGateway": true, "isDefaultGateway": true,
				"ipMasq": false, "hairpinMode": true, "mtu": mtu,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": lease.String()}}},
					"routes":  []map[string]string{{"dst": network.String()}},
					"dataDir": f.cfg.IPAMDir,
				},
			},
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
			{"type": "bandwidth", "capabilities": map[string]bool{"bandwidth": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(atomicfile.File{Path: filepath.Join(f.cfg.CNIConfDir, "10-regente.conflist"), Data: data, Mode: 0o644})
}
