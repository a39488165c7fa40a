package config

import (
	"cmp"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/datastore/backend"
)

// DefaultConfigFile is read when neither --config nor REGENTE_CONFIG is given.
// It is optional; a file named explicitly is not.
const DefaultConfigFile = "/etc/regente/config.yaml"

// DefaultPrivateRegistry is --private-registry's default. It is optional;
// a file named explicitly is not.
const DefaultPrivateRegistry = "/etc/regente/registries.yaml"

// Server holds every option of `regente server`. Each field is one flag; the
// config file key is the flag name and the environment variable is REGENTE_
// plus the upper-cased name with "-" turned into "_".
type Server struct {
	Node
	ConfigFile        string   // --config
	Token             string   // --token; "" means the token file's, or a new one
	TokenFile         string   // --token-file
	AgentToken        string   // --agent-token; "" means agents use the server token
	Server            string   // --server: an existing server to join (embedded etcd or a shared datastore)
	ClusterInit       bool     // --cluster-init: start a new embedded etcd cluster
	EtcdArgs          []string // --etcd-arg; "key=value", etcd config-file keys
	DataDir           string   // --data-dir
	RunDir            string   // --run-dir
	BindAddress       string   // --bind-address
	HTTPSListenPort   int      // --https-listen-port
	AdvertiseAddress  string   // --advertise-address; "" means the first node IP
	TLSSANs           []string // --tls-san; repeatable and comma-separated
	ClusterCIDR       string   // --cluster-cidr
	ServiceCIDR       string   // --service-cidr
	ClusterDNS        string   // --cluster-dns; "" is filled by Complete
	ClusterDomain     string   // --cluster-domain
	DatastoreEndpoint string   // --datastore-endpoint; "" means SQLite, or embedded etcd
	// Datastore is the datastore this start runs on, decided by Complete
	// from the datastore flags and the data dir; not a flag.
	Datastore                 backend.Choice
	datastoreErr              error    // why Complete could not decide; Validate reports it
	DatastoreCAFile           string   // --datastore-cafile
	DatastoreCertFile         string   // --datastore-certfile
	DatastoreKeyFile          string   // --datastore-keyfile
	WriteKubeconfig           string   // --write-kubeconfig
	WriteKubeconfigMode       string   // --write-kubeconfig-mode, octal
	KubeAPIServerArgs         []string // --kube-apiserver-arg; "key=value", never comma-split
	KubeControllerManagerArgs []string // --kube-controller-manager-arg
	KubeSchedulerArgs         []string // --kube-scheduler-arg
	FlannelBackend            string   // --flannel-backend; one of FlannelBackends
	Disable                   []string // --disable; add-on names, repeatable and comma-separated
	SystemDefaultRegistry     string   // --system-default-registry; "" means the embedded images
	DisableAgent              bool     // --disable-agent
	DisableHelmController     bool     // --disable-helm-controller
	DisableNetworkPolicy      bool     // --disable-network-policy
	DisableKubeProxy          bool     // --disable-kube-proxy: on every node (agents follow the server)
	DisableScheduler          bool     // --disable-scheduler
	DisableControllerManager  bool     // --disable-controller-manager
	DisableCloudController    bool     // --disable-cloud-controller
	SecretsEncryption         bool     // --secrets-encryption: encrypt Secrets from the first start
	SecretsEncryptionProvider string   // --secrets-encryption-provider: aescbc or secretbox
	ClusterReset              bool     // --cluster-reset
	ClusterResetRestorePath   string   // --cluster-reset-restore-path
	SnapshotDir               string   // --etcd-snapshot-dir; "" means <data-dir>/server/db/snapshots
	SnapshotRetention         int      // --etcd-snapshot-retention
	SnapshotScheduleCron      string   // --etcd-snapshot-schedule-cron
	DisableSnapshots          bool     // --etcd-disable-snapshots
	S3                        S3       // --etcd-s3*
	Debug                     bool     // --debug

	notes []string // what loading skipped, for the log

	// --datastore-in-memory: the SQLite datastore on a tmpfs, saved to the
	// data dir every --datastore-save-interval and at stop.
	DatastoreInMemory     bool
	DatastoreSaveInterval time.Duration
}

// Notes are what loading the options skipped and the user should hear of,
// such as unknown config file keys.
func (s *Server) Notes() []string { return s.notes }

// FlannelBackends are the accepted values of --flannel-backend.
var FlannelBackends = []string{"vxlan", "host-gw", "none"}

// NewServer returns a Server holding the defaults.
func NewServer() *Server {
	return &Server{
		ConfigFile:            DefaultConfigFile,
		DataDir:               datadir.DefaultDataDir,
		RunDir:                datadir.DefaultRunDir,
		BindAddress:           "0.0.0.0",
		HTTPSListenPort:       6443,
		ClusterCIDR:           "10.42.0.0/16",
		ServiceCIDR:           "10.43.0.0/16",
		ClusterDomain:         "cluster.local",
		WriteKubeconfig:       "/etc/regente/regente.yaml",
		WriteKubeconfigMode:   "0600",
		FlannelBackend:        "vxlan",
		SnapshotRetention:     5,
		DatastoreSaveInterval: time.Hour,
		SnapshotScheduleCron:  "0 */12 * * *",
		S3:                    NewS3(),
		Node:                  Node{PrivateRegistry: DefaultPrivateRegistry},
		// aescbc is what k3s writes and what upstream documents first.
		SecretsEncryptionProvider: "aescbc",
	}
}

// AddFlags registers every option on fs, bound to s. The current field values
// become the flag defaults, so call it on NewServer() to get the documented
// ones.
func (s *Server) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.ConfigFile, "config", s.ConfigFile, "YAML config file; <file>.d/*.yaml drop-ins apply after it in name order (env REGENTE_CONFIG)")
	fs.StringVar(&s.DataDir, "data-dir", s.DataDir, "Absolute directory for all server state: certificates, datastore, manifests")
	fs.StringVar(&s.RunDir, "run-dir", s.RunDir, "Directory for sockets and runtime state of the node (containerd, flannel); one per node on a host")
	fs.StringVar(&s.Token, "token", s.Token, "Secret that servers and agents join with (default: kept in <data-dir>/server/token, generated on first start)")
	fs.StringVar(&s.TokenFile, "token-file", s.TokenFile, "File holding --token")
	fs.StringVar(&s.AgentToken, "agent-token", s.AgentToken, "Secret that only agents join with (default: --token)")
	fs.StringVar(&s.Server, "server", s.Server, "https URL of an existing server to join as another server, with --token: its embedded etcd cluster, or with the same --datastore-endpoint")
	fs.BoolVar(&s.ClusterInit, "cluster-init", s.ClusterInit, "Keep the datastore in embedded etcd, so that more servers can join with --server (moves existing SQLite data into etcd once)")
	fs.StringArrayVar(&s.EtcdArgs, "etcd-arg", s.EtcdArgs, "Extra embedded etcd setting as key=value (etcd config-file keys, e.g. quota-backend-bytes=4294967296); repeatable")
	fs.StringVar(&s.BindAddress, "bind-address", s.BindAddress, "IP address the API server listens on")
	fs.IntVar(&s.HTTPSListenPort, "https-listen-port", s.HTTPSListenPort, "Port the API server listens on")
	fs.StringVar(&s.AdvertiseAddress, "advertise-address", s.AdvertiseAddress, "IP address the API server advertises to the cluster (default: the first node IP)")
	fs.StringSliceVar(&s.TLSSANs, "tls-san", s.TLSSANs, "Extra host name or IP for the API server certificate; repeatable, comma-separated")
	fs.StringVar(&s.ClusterCIDR, "cluster-cidr", s.ClusterCIDR, "IP range of pod IPs")
	fs.StringVar(&s.ServiceCIDR, "service-cidr", s.ServiceCIDR, "IP range of service cluster IPs")
	fs.StringVar(&s.ClusterDNS, "cluster-dns", s.ClusterDNS, "IP of the cluster DNS service (default: 10th address of --service-cidr, e.g. 10.43.0.10)")
	fs.StringVar(&s.ClusterDomain, "cluster-domain", s.ClusterDomain, "DNS domain of the cluster")
	fs.StringVar(&s.DatastoreEndpoint, "datastore-endpoint", s.DatastoreEndpoint, "Datastore URL: postgres://, mysql://, https:// for etcd (default: SQLite in --data-dir)")
	fs.StringVar(&s.DatastoreCAFile, "datastore-cafile", s.DatastoreCAFile, "CA bundle that verifies the --datastore-endpoint server's certificate")
	fs.StringVar(&s.DatastoreCertFile, "datastore-certfile", s.DatastoreCertFile, "Client certificate regente presents to the --datastore-endpoint server")
	fs.StringVar(&s.DatastoreKeyFile, "datastore-keyfile", s.DatastoreKeyFile, "Key of --datastore-certfile")
	fs.BoolVar(&s.DatastoreInMemory, "datastore-in-memory", s.DatastoreInMemory, "Keep the SQLite datastore in memory (a tmpfs under --run-dir) and save it to the data dir every --datastore-save-interval and at stop: fewer writes to flash, but a crash or power loss loses the changes since the last save")
	fs.DurationVar(&s.DatastoreSaveInterval, "datastore-save-interval", s.DatastoreSaveInterval, "With --datastore-in-memory: how often the datastore is saved to the data dir when more than heartbeats and events changed")
	fs.StringVar(&s.WriteKubeconfig, "write-kubeconfig", s.WriteKubeconfig, "Where to write the admin kubeconfig")
	fs.StringVar(&s.WriteKubeconfigMode, "write-kubeconfig-mode", s.WriteKubeconfigMode, "Octal file mode of the admin kubeconfig, e.g. 0644")
	fs.StringArrayVar(&s.KubeAPIServerArgs, "kube-apiserver-arg", s.KubeAPIServerArgs, "Extra kube-apiserver flag as key=value; repeatable, never comma-split")
	fs.StringArrayVar(&s.KubeControllerManagerArgs, "kube-controller-manager-arg", s.KubeControllerManagerArgs, "Extra kube-controller-manager flag as key=value; repeatable, never comma-split")
	fs.StringArrayVar(&s.KubeSchedulerArgs, "kube-scheduler-arg", s.KubeSchedulerArgs, "Extra kube-scheduler flag as key=value; repeatable, never comma-split")
	fs.StringVar(&s.FlannelBackend, "flannel-backend", s.FlannelBackend, "Pod network between nodes: "+strings.Join(FlannelBackends, ", ")+" (none: bring your own CNI)")
	fs.StringSliceVar(&s.Disable, "disable", s.Disable, "Add-on not to deploy (and to remove if deployed): coredns, local-storage, metrics-server, servicelb; repeatable, comma-separated")
	fs.StringVar(&s.SystemDefaultRegistry, "system-default-registry", s.SystemDefaultRegistry, "Run the add-ons from their upstream images under this registry instead of the images regente carries")
	fs.BoolVar(&s.DisableAgent, "disable-agent", s.DisableAgent, "Run only the control plane, without a kubelet on this node")
	fs.BoolVar(&s.DisableHelmController, "disable-helm-controller", s.DisableHelmController, "Do not install HelmChart resources (helm.cattle.io/v1)")
	fs.BoolVar(&s.DisableNetworkPolicy, "disable-network-policy", s.DisableNetworkPolicy, "Do not enforce NetworkPolicy on any node (agents follow the server)")
	fs.BoolVar(&s.DisableKubeProxy, "disable-kube-proxy", s.DisableKubeProxy, "Run no kube-proxy on any node, for a CNI that implements Services itself (agents follow the server)")
	fs.BoolVar(&s.DisableScheduler, "disable-scheduler", s.DisableScheduler, "Run no kube-scheduler in this server (another server's, or your own, schedules pods)")
	fs.BoolVar(&s.DisableControllerManager, "disable-controller-manager", s.DisableControllerManager, "Run no kube-controller-manager in this server (another server's, or your own, runs it)")
	fs.BoolVar(&s.DisableCloudController, "disable-cloud-controller", s.DisableCloudController, "Run no cloud node controller: nodes keep the node.cloudprovider.kubernetes.io/uninitialized taint until your own cloud controller manager removes it")
	fs.BoolVar(&s.SecretsEncryption, "secrets-encryption", s.SecretsEncryption, "Encrypt Secrets at rest from the first start (later: regente secrets-encrypt enable)")
	fs.StringVar(&s.SecretsEncryptionProvider, "secrets-encryption-provider", s.SecretsEncryptionProvider, "The key kind --secrets-encryption creates: aescbc or secretbox")
	fs.BoolVar(&s.ClusterReset, "cluster-reset", s.ClusterReset, "With --cluster-reset-restore-path: restore the datastore from a snapshot, keep the old one aside, and exit")
	fs.StringVar(&s.ClusterResetRestorePath, "cluster-reset-restore-path", s.ClusterResetRestorePath, "Snapshot file to restore with --cluster-reset")
	fs.StringVar(&s.SnapshotDir, "etcd-snapshot-dir", s.SnapshotDir, "Directory of datastore snapshots (default: <data-dir>/server/db/snapshots)")
	fs.IntVar(&s.SnapshotRetention, "etcd-snapshot-retention", s.SnapshotRetention, "Number of scheduled snapshots to keep")
	fs.StringVar(&s.SnapshotScheduleCron, "etcd-snapshot-schedule-cron", s.SnapshotScheduleCron, "When to take scheduled snapshots, in cron syntax")
	fs.BoolVar(&s.DisableSnapshots, "etcd-disable-snapshots", s.DisableSnapshots, "Take no scheduled snapshots")
	s.S3.AddFlags(fs, false)
	fs.BoolVar(&s.Debug, "debug", s.Debug, "Log at debug level")
	s.Node.addFlags(fs)
}

// Node holds the options of the node a server or an agent runs.
type Node struct {
	NodeIPs         []string // --node-ip; repeatable and comma-separated
	NodeName        string   // --node-name; "" means the hostname
	NodeExternalIPs []string // --node-external-ip
	KubeletArgs     []string // --kubelet-arg
	KubeProxyArgs   []string // --kube-proxy-arg
	NodeLabels      []string // --node-label; key=value, repeatable
	NodeTaints      []string // --node-taint; key=value:Effect, repeatable
	FlannelIface    string   // --flannel-iface; "" means the node IP's interface
	PrivateRegistry string   // --private-registry; registries.yaml (mirrors, auth, TLS)
	// --profile: "cis" hardens the node (and, on a server, the control
	// plane) as the CIS Kubernetes Benchmark asks; see ProfileCIS.
	Profile               string
	ProtectKernelDefaults bool // --protect-kernel-defaults: the kubelet fails when kernel tunables differ from its defaults
}

// ProfileCIS is the --profile value that turns on what the CIS Kubernetes
// Benchmark asks of a distribution beyond regente's defaults: the
// kubelet's protect-kernel-defaults, the API server's audit log, the
// restricted Pod Security Standard for every namespace but kube-system,
// and Secrets encrypted at rest. `regente check-config --cis` checks them.
const ProfileCIS = "cis"

// Profiles are the accepted values of --profile.
var Profiles = []string{ProfileCIS}

// CIS reports whether --profile cis is set.
func (n *Node) CIS() bool { return n.Profile == ProfileCIS }

// KernelDefaultsProtected reports whether the kubelet runs with
// protect-kernel-defaults: asked for, or implied by --profile cis.
func (n *Node) KernelDefaultsProtected() bool { return n.ProtectKernelDefaults || n.CIS() }

// validateNode reports the problems of the options a server and an agent
// share.
func (n *Node) validateNode(fail func(format string, args ...any)) {
	if n.Profile != "" && !slices.Contains(Profiles, n.Profile) {
		fail("--profile %q is not one of %v: use --profile cis, or leave it unset", n.Profile, Profiles)
	}
}

func (n *Node) addFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&n.NodeIPs, "node-ip", n.NodeIPs, "IP address of this node; repeat or comma-separate for dual-stack (default: detected)")
	fs.StringVar(&n.NodeName, "node-name", n.NodeName, "Name of this node (default: the hostname)")
	fs.StringSliceVar(&n.NodeExternalIPs, "node-external-ip", n.NodeExternalIPs, "External IP address of this node (its ExternalIP); repeat or comma-separate for dual-stack")
	fs.StringArrayVar(&n.KubeletArgs, "kubelet-arg", n.KubeletArgs, "Extra kubelet flag as key=value; repeatable, never comma-split")
	fs.StringArrayVar(&n.KubeProxyArgs, "kube-proxy-arg", n.KubeProxyArgs, "Extra kube-proxy flag as key=value, e.g. proxy-mode=nftables; repeatable, never comma-split")
	fs.StringArrayVar(&n.NodeLabels, "node-label", n.NodeLabels, "Label to register the node with, key=value; repeatable")
	fs.StringArrayVar(&n.NodeTaints, "node-taint", n.NodeTaints, "Taint to register the node with, key=value:Effect; repeatable")
	fs.StringVar(&n.FlannelIface, "flannel-iface", n.FlannelIface, "Interface flannel sends node-to-node traffic over (default: the one holding the node IP)")
	fs.StringVar(&n.PrivateRegistry, "private-registry", n.PrivateRegistry, "Registry mirrors, credentials and TLS for image pulls, in k3s's registries.yaml format (the default file may be missing)")
	fs.StringVar(&n.Profile, "profile", n.Profile, "Hardening profile: cis (CIS Kubernetes Benchmark: protect-kernel-defaults, audit log, restricted Pod Security outside kube-system, Secrets encryption; check with regente check-config --cis)")
	fs.BoolVar(&n.ProtectKernelDefaults, "protect-kernel-defaults", n.ProtectKernelDefaults, "Refuse to start when the kernel tunables the kubelet needs differ from its defaults, instead of setting them")
}

// Complete fills derived defaults: cluster-dns becomes the 10th address of
// service-cidr, the datastore is decided (Datastore; the endpoint's scheme
// is lower-cased, and a restart finds an etcd member in the data dir), and
// leading dashes are stripped from *-arg entries. It never
// reports bad input, so that Validate can report every problem at once; when
// service-cidr is unusable cluster-dns stays empty and Validate says why.
func (s *Server) Complete() error {
	if s.ClusterDNS == "" {
		if p, err := netip.ParsePrefix(s.ServiceCIDR); err == nil {
			if dns, ok := nthAddr(p.Masked(), 10); ok {
				s.ClusterDNS = dns.String()
			}
		}
	}
	s.Datastore, s.datastoreErr = backend.Resolve(backend.Flags{
		Endpoint: s.DatastoreEndpoint, ClusterInit: s.ClusterInit, JoinServer: s.Server, EtcdDir: s.Paths().EtcdDir})
	if s.datastoreErr == nil {
		s.DatastoreEndpoint = s.Datastore.Endpoint
	}
	if s.CIS() {
		s.SecretsEncryption = true
	}
	for _, args := range []*[]string{&s.KubeAPIServerArgs, &s.KubeControllerManagerArgs, &s.KubeSchedulerArgs, &s.KubeletArgs, &s.KubeProxyArgs} {
		for i, a := range *args {
			(*args)[i] = strings.TrimLeft(a, "-")
		}
	}
	return nil
}

// nthAddr returns the address n past the network address of p, if p holds it.
func nthAddr(p netip.Prefix, n int) (netip.Addr, bool) {
	a := p.Addr()
	for range n {
		if a = a.Next(); !a.IsValid() || !p.Contains(a) {
			return netip.Addr{}, false
		}
	}
	return a, true
}

// ParseComponentArgs turns "key=value" entries into "--key=value" flags for an
// upstream component. Empty entries are dropped: a bare "--" would end the
// component's flag parsing. Validate rejects them anyway.
func ParseComponentArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if a = strings.TrimLeft(a, "-"); a != "" {
			out = append(out, "--"+a)
		}
	}
	return out
}

// KubeconfigMode returns write-kubeconfig-mode as a file mode. An invalid mode
// (which Validate reports) yields 0600, the safe choice for a file holding
// admin credentials.
func (s *Server) KubeconfigMode() os.FileMode {
	m, err := strconv.ParseUint(s.WriteKubeconfigMode, 8, 32)
	if err != nil || m > 0o777 {
		return 0o600
	}
	return os.FileMode(m)
}

// Layout returns the node's directory layout for s.DataDir and s.RunDir,
// with --etcd-snapshot-dir applied.
func (s *Server) Layout() datadir.Layout {
	l := datadir.New(s.DataDir, s.RunDir)
	l.Server.SnapshotDir = cmp.Or(s.SnapshotDir, l.Server.SnapshotDir)
	return l
}

// Paths returns the server half of the layout.
func (s *Server) Paths() datadir.ServerPaths { return s.Layout().Server }
