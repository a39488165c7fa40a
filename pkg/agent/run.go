package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"

	"k8s.io/klog/v2"

	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/join"
	"regente.io/regente/pkg/loadbalancer"
	"regente.io/regente/pkg/sdnotify"
)

// Run runs `regente agent`: it takes the data dir's lock, joins the
// server, then runs the node with its components reaching the servers
// through the local load balancer.
func Run(ctx context.Context, cfg *config.Agent) error {
	logger := klog.FromContext(ctx)
	token, err := join.LoadToken(cfg.Token, cfg.TokenFile)
	if err != nil {
		return err
	}
	nodeIPs, err := NodeIPs(cfg.Node)
	if err != nil {
		return err
	}
	nodeName, err := NodeName(cfg.Node)
	if err != nil {
		return err
	}
	dirs := cfg.Layout()
	// The lock comes before the join, which writes the node's password and
	// credentials into the data dir: a second agent on the same data dir
	// stops here instead of joining over the first one's files. The
	// manager starts it again (a no-op) and stops it last.
	lock := &datadir.Lock{Dirs: []string{dirs.DataDir, dirs.Agent.AgentDir}, File: dirs.Agent.LockFile}
	if err := lock.Start(ctx); err != nil {
		return err
	}
	defer lock.Stop(context.WithoutCancel(ctx))

	logger.Info("Joining the cluster", "server", cfg.Server, "node", nodeName)
	var learned []string
	for _, hostPort := range loadbalancer.Remembered(dirs.Agent.LBServersFile) {
		learned = append(learned, "https://"+hostPort)
	}
	joined, err := join.Join(ctx, join.ClientConfig{
		ServerURL:    cfg.Server,
		FallbackURLs: learned,
		Token:        token,
		NodeName:     nodeName,
		NodeIPs:      nodeIPs,
		PasswordFile: dirs.Agent.NodePassword,
		TLSDir:       dirs.Agent.TLSDir,
	})
	if err != nil {
		return fmt.Errorf("join %s: %w", cfg.Server, err)
	}
	logger.Info("Joined the cluster", "servers", joined.Servers)

	proxyKubeconfig := dirs.Agent.ProxyKubeconfig
	lb := loadbalancer.New(loadbalancer.Config{
		Listen:    net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.LBServerPort)),
		Servers:   append([]string{cfg.Server}, joined.Servers...),
		StateFile: dirs.Agent.LBServersFile,
		// kube-proxy's identity may read EndpointSlices; its kubeconfig
		// exists once the node's credentials are written.
		Kubeconfig: func() string {
			if _, err := os.Stat(proxyKubeconfig); err != nil {
				return ""
			}
			return proxyKubeconfig
		},
	})
	components := Components(Config{
		Dirs:                  dirs,
		NodeName:              nodeName,
		NodeIP:                nodeIPs[0],
		NodeIPs:               nodeIPs,
		ExternalIPs:           cfg.NodeExternalIPs,
		ServerURL:             lb.URL(),
		Credentials:           func(context.Context, string) (*certs.NodePKI, error) { return joined.PKI, nil },
		CADir:                 dirs.Agent.TLSDir,
		Before:                []component.Component{lock, lb},
		ClusterDNS:            joined.Cluster.ClusterDNS,
		ClusterDomain:         joined.Cluster.ClusterDomain,
		ClusterCIDR:           joined.Cluster.ClusterCIDR,
		FlannelBackend:        joined.Cluster.FlannelBackend,
		FlannelIface:          cfg.FlannelIface,
		KubeletArgs:           config.ParseComponentArgs(cfg.KubeletArgs),
		ProxyArgs:             config.ParseComponentArgs(cfg.KubeProxyArgs),
		Labels:                cfg.NodeLabels,
		Taints:                cfg.NodeTaints,
		DisableNetworkPolicy:  joined.Cluster.DisableNetworkPolicy,
		DisableKubeProxy:      joined.Cluster.DisableKubeProxy,
		PrivateRegistry:       cfg.PrivateRegistry,
		ProtectKernelDefaults: cfg.KernelDefaultsProtected(),
	})
	components = append(components, &sdnotify.Ready{What: "regente agent"})
	return component.NewManager(components...).Run(ctx)
}
