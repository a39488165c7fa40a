package network

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/component"
)

// Config says where the CNI config goes and how to find the node.
type Config struct {
	NodeName   string
	Kubeconfig string // the node's kubeconfig
	CNIConfDir string // containerd's CNI conf_dir
	IPAMDir    string // host-local's allocation state
}

// Bridge is the single-node network component.
type Bridge struct {
	cfg Config
}

var _ component.Component = (*Bridge)(nil)

// New returns the network component.
func New(cfg Config) *Bridge { return &Bridge{cfg: cfg} }

// Name implements component.Component.
func (b *Bridge) Name() string { return "network" }

// hostTools are the programs the CNI plugins run on the host, with the
// Debian/Ubuntu package that has each.
var hostTools = []struct{ program, pkg string }{
	{"iptables", "iptables"},
}

// Init checks the host tools and kernel features pod networking needs,
// and turns on the kernel switches it may (ip_forward, bridge netfilter),
// before anything starts; it writes nothing under the data dir.
func (b *Bridge) Init(context.Context) error {
	if err := ensureKernelSettings("/proc/sys"); err != nil {
		return err
	}
	for _, t := range hostTools {
		if _, err := exec.LookPath(t.program); err != nil {
			return fmt.Errorf("%s not found in PATH: pod networking needs it; install the %q package "+
				"(apt-get install %s, dnf install %s, apk add %s), or run with --disable-agent", t.program, t.pkg, t.pkg, t.pkg, t.pkg)
		}
	}
	return nil
}

// Stop implements component.Component.
func (b *Bridge) Stop(context.Context) error { return nil }

// Start waits (in the background) for the node's pod CIDR and writes the
// CNI config; until then the node reports NetworkReady=false, as upstream.
func (b *Bridge) Start(ctx context.Context) error {
	restCfg, err := clientcmd.BuildConfigFromFlags("", b.cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load node kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("component", "network")
	go func() {
		var cidr string
		err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
			node, err := client.CoreV1().Nodes().Get(ctx, b.cfg.NodeName, metav1.GetOptions{})
			if err != nil {
				return false, nil // not registered yet
			}
			cidr = node.Spec.PodCIDR
			return cidr != "", nil
		})
		if err != nil {
			return
		}
		if err := b.writeConfig(cidr); err != nil {
			logger.Error(err, "Cannot write the CNI config; pods cannot start")
			return
		}
		logger.Info("Pod network configured", "podCIDR", cidr)
	}()
	return nil
}

func (b *Bridge) writeConfig(podCIDR string) error {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "regente",
		"plugins": []map[string]any{
			{
				"type": "bridge", "bridge": "regente0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": podCIDR}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": b.cfg.IPAMDir,
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
	return atomicfile.Write(atomicfile.File{Path: filepath.Join(b.cfg.CNIConfDir, "10-regente.conflist"), Data: data, Mode: 0o644})
}
