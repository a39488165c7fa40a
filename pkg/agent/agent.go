package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/cloudprovider"
	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/images"
	"regente.io/regente/pkg/kubeconfig"
	"regente.io/regente/pkg/kubelet"
	"regente.io/regente/pkg/netpol"
	"regente.io/regente/pkg/network"
	"regente.io/regente/pkg/payload"
	"regente.io/regente/pkg/payload/embedded"
	"regente.io/regente/pkg/proxy"
	"regente.io/regente/pkg/runtime"
)

// Config is what a node needs.
type Config struct {
	Dirs     datadir.Layout
	NodeName string
	NodeIP   net.IP
	// NodeIPs are all the node's internal addresses (dual-stack), and
	// ExternalIPs its --node-external-ip; the node announces both.
	NodeIPs     []net.IP
	ExternalIPs []string
	ServerURL   string // https URL the node's components reach the API servers at
	// Credentials issues or fetches the node's certificates into tlsDir:
	// from the server's own CAs on a server, through the join on an agent.
	Credentials func(ctx context.Context, tlsDir string) (*certs.NodePKI, error)
	// CADir holds the CA certificates the node trusts: the server's TLS
	// dir on a server, the node's own TLS dir (written by the join) on an
	// agent.
	CADir string
	// Before are components that run before the node's own, such as the
	// agent's API server load balancer.
	Before         []component.Component
	ClusterDNS     string
	ClusterDomain  string
	ClusterCIDR    string
	FlannelBackend string
	FlannelIface   string
	KubeletArgs    []string
	ProxyArgs      []string
	Labels         []string
	Taints         []string
	// DisableNetworkPolicy leaves NetworkPolicy unenforced (another
	// implementation, or none).
	DisableNetworkPolicy bool
	// DisableKubeProxy runs no kube-proxy: the CNI implements Services.
	DisableKubeProxy bool
	// PrivateRegistry is --private-registry, the registries.yaml file.
	PrivateRegistry string
	// ProtectKernelDefaults is the kubelet's (--protect-kernel-defaults,
	// --profile cis).
	ProtectKernelDefaults bool
}

// Components returns the node's components in start order.
func Components(cfg Config) []component.Component {
	dirs := cfg.Dirs.Agent
	archive := embedded.Archive()
	payloadDir := payload.Dir(archive, cfg.Dirs.DataDir)
	binDir := filepath.Join(payloadDir, "bin")
	nodePKI := certs.NodeFiles(cfg.CADir, dirs.TLSDir)
	kubeletKubeconfig, proxyKubeconfig, flannelKubeconfig := dirs.KubeletKubeconfig, dirs.ProxyKubeconfig, dirs.FlannelKubeconfig
	cniConfDir := dirs.CNIConfDir

	containerd := runtime.New(runtime.Config{
		AgentDir:     dirs.AgentDir,
		StateDir:     cfg.Dirs.Run.ContainerdDir,
		BinDir:       binDir,
		CNIConfDir:   cniConfDir,
		SandboxImage: images.PauseImage,
		// The default file is read only if present; one named on purpose
		// must exist.
		RegistriesFile:     cfg.PrivateRegistry,
		RegistriesOptional: cfg.PrivateRegistry == config.DefaultPrivateRegistry,
	})
	kubeProxy := proxy.New(proxy.Config{
		NodeName:    cfg.NodeName,
		Kubeconfig:  proxyKubeconfig,
		ClusterCIDR: cfg.ClusterCIDR,
		ExtraArgs:   cfg.ProxyArgs,
	})
	return append(cfg.Before,
		component.Func("payload", func(ctx context.Context) error {
			_, err := payload.Ensure(klog.FromContext(ctx).WithValues("component", "payload"), archive, cfg.Dirs.DataDir)
			return err
		}),
		component.Func("node-credentials", func(ctx context.Context) error {
			issued, err := cfg.Credentials(ctx, dirs.TLSDir)
			if err != nil {
				return fmt.Errorf("node credentials: %w", err)
			}
			for _, change := range issued.Changed {
				klog.FromContext(ctx).Info("Certificate "+change, "component", "certs")
			}
			creds := kubeconfig.Credentials{CAFile: issued.ServerCA, CertFile: issued.KubeletClient.Cert, KeyFile: issued.KubeletClient.Key}
			if err := kubeconfig.Write(kubeletKubeconfig, cfg.ServerURL, "system:node:"+cfg.NodeName, creds, 0o600); err != nil {
				return err
			}
			creds = kubeconfig.Credentials{CAFile: issued.ServerCA, CertFile: issued.KubeProxy.Cert, KeyFile: issued.KubeProxy.Key}
			if err := kubeconfig.Write(proxyKubeconfig, cfg.ServerURL, "system:kube-proxy", creds, 0o600); err != nil {
				return err
			}
			creds = kubeconfig.Credentials{CAFile: issued.ServerCA, CertFile: issued.Flannel.Cert, KeyFile: issued.Flannel.Key}
			return kubeconfig.Write(flannelKubeconfig, cfg.ServerURL, certs.FlannelUser, creds, 0o600)
		}),
		containerd,
		images.New(images.Config{
			Socket:   containerd.Socket(),
			Dirs:     []string{filepath.Join(payloadDir, "images"), dirs.ImagesDir},
			WatchDir: dirs.ImagesDir,
		}),
		kubelet.New(kubelet.Config{
			NodeName:        cfg.NodeName,
			NodeIP:          cfg.NodeIP.String(),
			RootDir:         dirs.KubeletDir,
			ConfigDir:       dirs.ConfigDir,
			Kubeconfig:      kubeletKubeconfig,
			PKI:             &nodePKI,
			RuntimeEndpoint: containerd.Endpoint(),
			ClusterDNS:      cfg.ClusterDNS,
			ClusterDomain:   cfg.ClusterDomain,
			Labels:          cfg.Labels,
			Taints:          cfg.Taints,
			ExtraArgs:       cfg.KubeletArgs,

			ProtectKernelDefaults: cfg.ProtectKernelDefaults,
		}),
		network.New(network.Config{
			NodeName:    cfg.NodeName,
			NodeIP:      cfg.NodeIP.String(),
			Iface:       cfg.FlannelIface,
			Backend:     cfg.FlannelBackend,
			ClusterCIDR: cfg.ClusterCIDR,
			Kubeconfig:  flannelKubeconfig,
			ConfDir:     dirs.FlannelConfDir,
			RunDir:      cfg.Dirs.Run.FlannelDir,
			CNIConfDir:  cniConfDir,
			IPAMDir:     dirs.IPAMDir,
			NFTables:    kubeProxy.NFTables,
		}),
		component.Unless(cfg.DisableKubeProxy, kubeProxy, "--disable-kube-proxy: Services work only through a CNI that implements them"),
		networkPolicy(cfg, flannelKubeconfig),
		component.Background("announce-node", func(ctx context.Context) {
			announceReady(ctx, kubeletKubeconfig, cfg)
		}),
	)
}

// networkPolicy enforces NetworkPolicy with the node network identity,
// which may read pods, namespaces and policies, unless disabled.
func networkPolicy(cfg Config, kubeconfig string) component.Component {
	if cfg.DisableNetworkPolicy {
		return component.Func("network-policy-disabled", func(ctx context.Context) error {
			_ = exec.Command("nft", "delete", "table", "inet", netpol.TableName).Run() // from an earlier run, if any: absent is fine
			return nil
		})
	}
	return netpol.New(netpol.Config{NodeName: cfg.NodeName, Kubeconfig: kubeconfig, ClusterCIDR: cfg.ClusterCIDR})
}

// announceReady announces the node's addresses in its annotations, for
// the server's cloud node controller, logs once when the node first
// reports Ready, then reports pressure on the node until ctx ends.
func announceReady(ctx context.Context, kubeconfigPath string, cfg Config) {
	logger := klog.FromContext(ctx).WithValues("component", "agent")
	_, client, err := kubeconfig.Client(kubeconfigPath)
	if err != nil {
		logger.Error(err, "Cannot watch for the node to be Ready")
		return
	}
	internal := make([]string, 0, len(cfg.NodeIPs))
	for _, ip := range cfg.NodeIPs {
		internal = append(internal, ip.String())
	}
	if len(internal) == 0 {
		internal = []string{cfg.NodeIP.String()}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{
		cloudprovider.InternalIPAnnotation: strings.Join(internal, ","),
		cloudprovider.ExternalIPAnnotation: nilIfEmpty(strings.Join(cfg.ExternalIPs, ",")),
	}}})
	if err != nil {
		logger.Error(err, "Cannot announce the node's addresses")
		return
	}
	begin := time.Now()
	announced := false
	_ = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if !announced {
			if _, err := client.CoreV1().Nodes().Patch(ctx, cfg.NodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				return false, nil // not registered yet
			}
			announced = true
		}
		node, err := client.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range node.Status.Conditions {
			if c.Type == "Ready" && c.Status == "True" {
				logger.Info("Node is Ready", "node", cfg.NodeName, "after", time.Since(begin).Round(time.Millisecond))
				return true, nil
			}
		}
		return false, nil
	})
	reportPressure(ctx, logger, client, cfg.NodeName, cfg.Dirs.Agent.KubeletDir)
}

// nilIfEmpty makes an empty annotation value a JSON null, which a merge
// patch turns into removing the annotation.
func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
