package server

import (
	"context"
	"fmt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"k8s.io/klog/v2"

	"regente.io/regente/manifests"
	"regente.io/regente/pkg/agent"
	"regente.io/regente/pkg/apiserver"
	"regente.io/regente/pkg/certexpiry"
	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/cloudprovider"
	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/controllermanager"
	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/datastore"
	"regente.io/regente/pkg/datastore/backend"
	"regente.io/regente/pkg/deploy"
	"regente.io/regente/pkg/etcd"
	"regente.io/regente/pkg/helmchart"
	"regente.io/regente/pkg/join"
	"regente.io/regente/pkg/kubeconfig"
	"regente.io/regente/pkg/leader"
	"regente.io/regente/pkg/nodehosts"
	"regente.io/regente/pkg/scheduler"
	"regente.io/regente/pkg/sdnotify"
	"regente.io/regente/pkg/secretsencrypt"
	"regente.io/regente/pkg/servicelb"
	"regente.io/regente/pkg/snapshot"
	"regente.io/regente/pkg/snapshot/s3"
	"regente.io/regente/pkg/snapshot/serverstate"
	"regente.io/regente/pkg/sysimages"
)

// Run runs `regente server` until ctx ends or a component fails.
func Run(ctx context.Context, cfg *config.Server) error {
	dirs := cfg.Layout()
	paths := dirs.Server
	nodeIPs, err := agent.NodeIPs(cfg.Node)
	if err != nil {
		return err
	}
	nodeName, err := agent.NodeName(cfg.Node)
	if err != nil {
		return err
	}
	etcdArgs, err := etcd.ParseArgs(cfg.EtcdArgs)
	if err != nil {
		return err
	}
	if cfg.ClusterReset {
		return clusterReset(ctx, cfg, dirs, nodeName, nodeIPs[0], etcdArgs)
	}
	if err := preflight(cfg, paths); err != nil {
		return err
	}
	advertise, err := advertiseAddress(cfg, nodeIPs)
	if err != nil {
		return err
	}
	pki := certs.Layout(paths.TLSDir)
	creds := componentKubeconfigs{
		admin:             paths.AdminKubeconfig,
		controllerManager: filepath.Join(paths.CredDir, "controller.kubeconfig"),
		scheduler:         filepath.Join(paths.CredDir, "scheduler.kubeconfig"),
	}

	ds := newDatastore(cfg, dirs, nodeName, nodeIPs[0], etcdArgs)
	tokens := join.NewTokens(join.TokenFiles{Token: paths.TokenFile, AgentToken: paths.AgentToken,
		Revoked: paths.RevokedFile, NodeToken: paths.NodeToken, TLSDir: paths.TLSDir})
	joinServer := join.NewServer(join.ServerConfig{
		Tokens:           tokens,
		EtcdMembers:      ds.etcdMembers,
		CADir:            paths.TLSDir,
		EncryptionConfig: secretsencrypt.Path(paths.CredDir),
		Kubeconfig:       creds.admin,
		Cluster: join.Cluster{
			ClusterCIDR:          cfg.ClusterCIDR,
			ServiceCIDR:          cfg.ServiceCIDR,
			ClusterDNS:           cfg.ClusterDNS,
			ClusterDomain:        cfg.ClusterDomain,
			FlannelBackend:       cfg.FlannelBackend,
			DisableNetworkPolicy: cfg.DisableNetworkPolicy,
			DisableKubeProxy:     cfg.DisableKubeProxy,
		},
	})
	// Every component's Init (upstream flag parsing among them) runs before
	// the first Start, so bad input is reported before the lock, the
	// certificates or the datastore touch the data dir.
	components := slices.Concat(
		[]component.Component{
			&datadir.Lock{Dirs: []string{cfg.DataDir, paths.ServerDir}, File: paths.LockFile},
			component.Func("fetch-cluster-keys", func(ctx context.Context) error {
				return fetchClusterKeys(ctx, cfg, paths)
			}),
			component.Func("certs", func(ctx context.Context) error {
				return ensureCredentials(ctx, cfg, paths, nodeName, nodeIPs, creds)
			}),
			component.Func("token", func(ctx context.Context) error {
				given, err := join.ReadToken(cfg.Token, cfg.TokenFile)
				if err != nil {
					return err
				}
				return tokens.Load(ctx, given, cfg.AgentToken)
			}),
			component.Func("secrets-encryption", func(ctx context.Context) error {
				return ensureEncryption(ctx, cfg, paths)
			}),
		},
		ds.components,
		[]component.Component{
			apiserver.New(apiserver.Config{
				BindAddress:      cfg.BindAddress,
				AdvertiseAddress: advertise,
				Port:             cfg.HTTPSListenPort,
				ServiceCIDR:      cfg.ServiceCIDR,
				ClusterDomain:    cfg.ClusterDomain,
				EtcdServers:      ds.servers,
				EtcdTLS:          ds.tls,
				PKI:              pki,
				ConfigDir:        paths.ConfigDir,
				Alone:            !cfg.Datastore.Shared(),
				Hardening:        apiserverHardening(cfg, paths),
				ExtraArgs:        config.ParseComponentArgs(cfg.KubeAPIServerArgs),
				EncryptionConfig: secretsencrypt.Path(paths.CredDir),
				Handlers:         joinServer.Handlers(),
			}),
			clusterRoles(creds.admin),
			join.NewPasswordCleanup(creds.admin, ds.onNodeDeleted...),
			component.Unless(cfg.DisableCloudController, cloudprovider.NewController(creds.admin),
				"--disable-cloud-controller: nodes stay tainted node.cloudprovider.kubernetes.io/uninitialized until your cloud controller manager initializes them"),
			announce(cfg),
			component.Unless(cfg.DisableControllerManager, controllermanager.New(controllermanager.Config{
				Kubeconfig:  creds.controllerManager,
				ClusterCIDR: cfg.ClusterCIDR,
				ServiceCIDR: cfg.ServiceCIDR,
				PKI:         pki,
				LeaderElect: cfg.Datastore.Shared(),
				ExtraArgs:   config.ParseComponentArgs(cfg.KubeControllerManagerArgs),
			}), "--disable-controller-manager"),
			component.Unless(cfg.DisableScheduler, scheduler.New(scheduler.Config{
				Kubeconfig:  creds.scheduler,
				LeaderElect: cfg.Datastore.Shared(),
				ExtraArgs:   config.ParseComponentArgs(cfg.KubeSchedulerArgs),
			}), "--disable-scheduler"),
			component.Unless(cfg.DisableSnapshots || !cfg.Datastore.Snapshots(), snapshotSchedule(cfg, dirs, nodeName),
				"--etcd-disable-snapshots, or a datastore backed up with its own tools"),
		},
		electedControllers(cfg, paths, creds.admin, nodeName),
		[]component.Component{certexpiry.New(certexpiry.Config{
			Kubeconfig: creds.admin, NodeName: nodeName, Dirs: []string{paths.TLSDir, dirs.Agent.TLSDir}})},
		serverNode(cfg, dirs, nodeName, nodeIPs, creds.admin),
		[]component.Component{&sdnotify.Ready{What: "regente server"}},
	)
	return component.NewManager(components...).Run(ctx)
}

// serverNode is the node a server runs unless --disable-agent: registered
// with the server's own credentials and labelled with its role, then the
// agent's components, with certificates from the server's CAs.
func serverNode(cfg *config.Server, dirs datadir.Layout, nodeName string, nodeIPs []net.IP, admin string) []component.Component {
	if cfg.DisableAgent {
		return nil
	}
	paths := dirs.Server
	return append([]component.Component{component.Func("register-node", func(ctx context.Context) error {
		return registerOwnNode(ctx, admin, dirs.Agent.NodePassword, nodeName)
	}), &roleLabels{kubeconfig: admin, nodeName: nodeName, labels: serverRoleLabels(cfg.Datastore.Kind == backend.EmbeddedEtcd)}},
		agent.Components(agent.Config{
			Dirs:        dirs,
			NodeName:    nodeName,
			NodeIP:      nodeIPs[0],
			NodeIPs:     nodeIPs,
			ExternalIPs: cfg.NodeExternalIPs,
			ServerURL:   localURL(cfg),
			Credentials: func(_ context.Context, tlsDir string) (*certs.NodePKI, error) {
				return certs.EnsureNode(certs.NodeOptions{CADir: paths.TLSDir, Dir: tlsDir, NodeName: nodeName, NodeIPs: nodeIPs[:1]})
			},
			CADir:                 paths.TLSDir,
			ClusterDNS:            cfg.ClusterDNS,
			ClusterDomain:         cfg.ClusterDomain,
			ClusterCIDR:           cfg.ClusterCIDR,
			FlannelBackend:        cfg.FlannelBackend,
			FlannelIface:          cfg.FlannelIface,
			KubeletArgs:           config.ParseComponentArgs(cfg.KubeletArgs),
			ProxyArgs:             config.ParseComponentArgs(cfg.KubeProxyArgs),
			Labels:                cfg.NodeLabels,
			Taints:                cfg.NodeTaints,
			DisableNetworkPolicy:  cfg.DisableNetworkPolicy,
			DisableKubeProxy:      cfg.DisableKubeProxy,
			PrivateRegistry:       cfg.PrivateRegistry,
			ProtectKernelDefaults: cfg.KernelDefaultsProtected(),
		})...)
}

// apiserverHardening is what --profile cis adds to the API server. The
// add-ons regente deploys run in kube-system, exempt from the restricted
// Pod Security Standard as in RKE2's CIS profile; every other namespace
// gets it unless its labels say otherwise.
func apiserverHardening(cfg *config.Server, paths datadir.ServerPaths) *apiserver.Hardening {
	if !cfg.CIS() {
		return nil
	}
	return &apiserver.Hardening{AuditLog: paths.AuditLog, PodSecurityLevel: "restricted", PodSecurityExempt: []string{metav1.NamespaceSystem}}
}

// snapshotSchedule takes scheduled snapshots of the datastore, offsite too
// with --etcd-s3.
func snapshotSchedule(cfg *config.Server, dirs datadir.Layout, nodeName string) *snapshot.Schedule {
	sched := &snapshot.Schedule{Dir: dirs.Server.SnapshotDir, NodeName: nodeName, Cron: cfg.SnapshotScheduleCron, Retention: cfg.SnapshotRetention,
		Save: func(ctx context.Context, dir, name string) (*snapshot.Info, error) {
			return serverstate.Save(ctx, cfg.Datastore, dirs, dir, name)
		}}
	if cfg.S3.Enabled {
		sched.Offsite = func(ctx context.Context) (snapshot.Offsite, error) {
			store, err := s3.Open(ctx, cfg.S3, dirs.Server.AdminKubeconfig)
			if err != nil {
				return nil, err
			}
			return store, nil
		}
	}
	return sched
}

// advertiseAddress is the address the apiserver publishes in the
// `kubernetes` Service endpoints; upstream refuses loopback there.
func advertiseAddress(cfg *config.Server, nodeIPs []net.IP) (string, error) {
	addr, from := cfg.AdvertiseAddress, "--advertise-address"
	if addr == "" {
		addr, from = nodeIPs[0].String(), "--node-ip"
	}
	if ip := net.ParseIP(addr); ip == nil || ip.IsLoopback() || ip.IsUnspecified() {
		return "", fmt.Errorf("%s %s cannot be advertised to the cluster (loopback or unspecified): "+
			"pass --advertise-address with an address of this machine that pods can reach", from, addr)
	}
	return addr, nil
}

// ensureCredentials creates or renews the PKI and writes the kubeconfigs.
func ensureCredentials(ctx context.Context, cfg *config.Server, paths datadir.ServerPaths, hostname string, ips []net.IP, kc componentKubeconfigs) error {
	_, svc, _ := net.ParseCIDR(cfg.ServiceCIDR) // validated before
	serviceIP := make(net.IP, len(svc.IP))
	copy(serviceIP, svc.IP)
	serviceIP[len(serviceIP)-1]++
	pki, err := certs.Ensure(certs.Options{
		Dir:           paths.TLSDir,
		Hostname:      hostname,
		NodeIPs:       ips,
		ServiceIP:     serviceIP,
		ClusterDomain: cfg.ClusterDomain,
		ExtraSANs:     extraSANs(cfg),
	})
	if err != nil {
		return fmt.Errorf("prepare certificates in %s: %w", paths.TLSDir, err)
	}
	for _, change := range pki.Changed {
		klog.FromContext(ctx).Info("Certificate "+change, "component", "certs")
	}
	return writeKubeconfigs(cfg, paths, pki, kc)
}

func extraSANs(cfg *config.Server) []string {
	sans := append([]string(nil), cfg.TLSSANs...)
	if cfg.AdvertiseAddress != "" {
		sans = append(sans, cfg.AdvertiseAddress)
	}
	return sans
}

type componentKubeconfigs struct{ admin, controllerManager, scheduler string }

func writeKubeconfigs(cfg *config.Server, paths datadir.ServerPaths, pki *certs.PKI, kc componentKubeconfigs) error {
	local := localURL(cfg)
	files := []struct {
		path, user string
		pair       certs.KeyPair
		mode       os.FileMode
	}{
		{kc.controllerManager, "system:kube-controller-manager", pki.ControllerManager, 0o600},
		{kc.scheduler, "system:kube-scheduler", pki.Scheduler, 0o600},
		{kc.admin, "admin", pki.Admin, 0o600},
		{cfg.WriteKubeconfig, "admin", pki.Admin, cfg.KubeconfigMode()},
	}
	for _, f := range files {
		creds := kubeconfig.Credentials{CAFile: pki.ServerCA.Cert, CertFile: f.pair.Cert, KeyFile: f.pair.Key}
		if err := kubeconfig.Write(f.path, local, f.user, creds, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// localURL is the apiserver's URL for clients on this machine.
func localURL(cfg *config.Server) string {
	return "https://" + net.JoinHostPort(loopbackFor(cfg.BindAddress), strconv.Itoa(cfg.HTTPSListenPort))
}

// loopbackFor picks the address local clients dial: the bind address when
// it is a specific one, else loopback of the same family.
func loopbackFor(bind string) string {
	ip := net.ParseIP(bind)
	switch {
	case ip == nil:
		return "127.0.0.1"
	case ip.IsUnspecified() && ip.To4() == nil:
		return "::1"
	case ip.IsUnspecified():
		return "127.0.0.1"
	}
	return ip.String()
}

// addonValues are the settings the add-on manifests are rendered with.
func addonValues(cfg *config.Server) deploy.Values {
	image := func(name string) string {
		img, _ := sysimages.Lookup(name)
		return img.RefFor(cfg.SystemDefaultRegistry)
	}
	return deploy.Values{
		ClusterDNS:    cfg.ClusterDNS,
		ClusterDomain: cfg.ClusterDomain,
		StorageDir:    cfg.Layout().Storage,
		Images: deploy.Images{CoreDNS: image("coredns"), MetricsServer: image("metrics-server"), Ingress: image("ingress"),
			LocalPath: image("local-path-provisioner"), LocalPathHelper: image("local-path-helper")},
	}
}

// announce prints, once the API answers, what a user needs to use it.
func announce(cfg *config.Server) component.Component {
	return component.Func("announce", func(ctx context.Context) error {
		klog.FromContext(ctx).Info("Kubernetes API is ready", "url", localURL(cfg), "kubeconfig", cfg.WriteKubeconfig,
			"try", "regente kubectl get --raw /readyz")
		klog.FromContext(ctx).Info("Agents join with the token in "+cfg.Paths().TokenFile,
			"try", "regente agent --server https://<this server>:"+strconv.Itoa(cfg.HTTPSListenPort)+" --token-file <a copy of it>")
		return nil
	})
}

// clusterReset restores the datastore from a snapshot, or with embedded
// etcd and no snapshot resets the membership to this server alone, and
// exits: the next start, without --cluster-reset, serves the result.
func clusterReset(ctx context.Context, cfg *config.Server, dirs datadir.Layout, nodeName string, nodeIP net.IP, etcdArgs map[string]any) error {
	paths := dirs.Server
	lock := &datadir.Lock{Dirs: []string{cfg.DataDir, paths.ServerDir}, File: paths.LockFile}
	if err := datadir.CheckNotLocked(paths.LockFile); err != nil {
		return err
	}
	if err := lock.Start(ctx); err != nil {
		return err
	}
	defer lock.Stop(ctx)
	logger := klog.FromContext(ctx)
	if cfg.S3.Enabled && cfg.ClusterResetRestorePath != "" {
		local, err := downloadSnapshot(ctx, cfg, paths.SnapshotDir)
		if err != nil {
			return err
		}
		withLocal := *cfg
		withLocal.ClusterResetRestorePath = local
		cfg = &withLocal
	}
	if cfg.Datastore.Kind == backend.EmbeddedEtcd {
		if err := resetEtcd(ctx, cfg, paths, nodeName, nodeIP, etcdArgs); err != nil || cfg.ClusterResetRestorePath == "" {
			return err
		}
		// Once the snapshot is checked and restored: the CAs it carries.
		return restoreKeys(ctx, cfg, paths)
	}
	if cfg.ClusterResetRestorePath == "" {
		return fmt.Errorf("--cluster-reset on SQLite has no cluster membership to reset: give --cluster-reset-restore-path <snapshot> to restore one (see regente etcd-snapshot ls)")
	}
	// A copy a killed run left in memory would be preferred to the
	// restored file at the next start: it is saved first, so that the
	// restore keeps it aside with the rest.
	if _, err := datastore.SaveLeftoverMemory(dirs.Run.DatastoreDir, paths.SQLiteFile); err != nil {
		return err
	}
	aside, err := snapshot.RestoreSQLite(cfg.ClusterResetRestorePath, paths.SQLiteFile)
	if err != nil {
		return fmt.Errorf("restore %s: %w", cfg.ClusterResetRestorePath, err)
	}
	if aside != "" {
		logger.Info("The datastore it replaced is kept", "dir", aside)
	}
	if err := restoreKeys(ctx, cfg, paths); err != nil {
		return err
	}
	logger.Info("Restored the datastore from the snapshot; start regente again without --cluster-reset", "snapshot", cfg.ClusterResetRestorePath, "datastore", paths.SQLiteFile)
	return nil
}

// downloadSnapshot fetches --cluster-reset-restore-path, a snapshot name
// in S3, into dir, unless it names a local file.
func downloadSnapshot(ctx context.Context, cfg *config.Server, dir string) (string, error) {
	if _, err := os.Stat(cfg.ClusterResetRestorePath); err == nil {
		return cfg.ClusterResetRestorePath, nil
	}
	if cfg.S3.Bucket == "" {
		return "", fmt.Errorf("--cluster-reset from S3 needs --etcd-s3-bucket (and the rest of the --etcd-s3* flags): the --etcd-s3-config-secret cannot be read while the cluster is down")
	}
	store, err := s3.New(ctx, cfg.S3)
	if err != nil {
		return "", err
	}
	name := filepath.Base(cfg.ClusterResetRestorePath)
	klog.FromContext(ctx).Info("Downloading the snapshot", "name", name, "from", store.Where(), "to", dir)
	return store.Download(ctx, name, dir)
}

// fetchClusterKeys is the first step of joining another server (--server):
// it fetches the cluster's CAs, service-account key and encryption
// configuration before this server issues its own certificates from them.
// The datastore joins later, with its own component.
func fetchClusterKeys(ctx context.Context, cfg *config.Server, paths datadir.ServerPaths) error {
	if cfg.Server == "" {
		return nil
	}
	token, err := join.LoadToken(cfg.Token, cfg.TokenFile)
	if err != nil {
		return err
	}
	klog.FromContext(ctx).Info("Joining the cluster as a server", "server", cfg.Server)
	return join.FetchBootstrap(ctx, cfg.Server, token, paths.TLSDir, secretsencrypt.Path(paths.CredDir))
}

// electedControllers are regente's own controllers. With several servers
// they run on the one that holds the lease, as k3s's do: two servers
// applying the same manifests or installing the same chart at once would
// fight.
func electedControllers(cfg *config.Server, paths datadir.ServerPaths, admin, nodeName string) []component.Component {
	var controllers []component.Component
	if !cfg.DisableHelmController {
		// Before the deploy controller, which may apply HelmCharts from
		// the manifests directory: Start installs the CRDs.
		controllers = append(controllers, helmchart.New(helmchart.Config{
			Kubeconfig: admin,
			StaticDir:  paths.StaticDir,
			StateDir:   paths.HelmDir,
		}))
	}
	controllers = append(controllers, deploy.New(deploy.Config{
		Dir:         paths.ManifestsDir,
		Kubeconfig:  admin,
		Addons:      manifests.Addons(),
		Values:      addonValues(cfg),
		Disabled:    cfg.Disable,
		Controllers: []string{"servicelb"},
	}))
	if !slices.Contains(cfg.Disable, "coredns") {
		controllers = append(controllers, nodehosts.New(admin))
	}
	if svclb, _ := sysimages.Lookup("svclb"); slices.Contains(cfg.Disable, "servicelb") {
		controllers = append(controllers, servicelb.Cleanup(admin))
	} else {
		controllers = append(controllers, servicelb.New(admin, svclb.RefFor(cfg.SystemDefaultRegistry)))
	}
	if cfg.Datastore.Shared() {
		return []component.Component{leader.New(admin, nodeName, controllers...)}
	}
	return controllers
}

// ensureEncryption writes the first encryption configuration, encrypting
// with a new key when --secrets-encryption is set, or checks the one
// there; `regente secrets-encrypt` changes it from then on.
func ensureEncryption(ctx context.Context, cfg *config.Server, paths datadir.ServerPaths) error {
	logger := klog.FromContext(ctx).WithValues("component", "secrets-encryption")
	enc, created, err := secretsencrypt.Ensure(paths.CredDir, cfg.SecretsEncryption, cfg.SecretsEncryptionProvider, time.Now())
	if err != nil {
		return err
	}
	switch {
	case created && enc.Enabled():
		logger.Info("Secrets are encrypted at rest", "keys", enc.KeyNames(), "config", secretsencrypt.Path(paths.CredDir))
	case cfg.SecretsEncryption && !enc.Enabled():
		logger.Info("--secrets-encryption is set, but the encryption configuration, written at the first start, says disabled: run `regente secrets-encrypt enable`",
			"config", secretsencrypt.Path(paths.CredDir))
	}
	return nil
}
