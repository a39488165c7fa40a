package datadir

import "path/filepath"

// Defaults are the data and run dirs when neither a flag, the config file
// nor the environment names others.
const (
	DefaultDataDir = "/var/lib/regente"
	DefaultRunDir  = "/run/regente"
)

// Layout is where a node keeps its state: everything below its data dir
// (server and agent halves, local-path volumes; pkg/payload owns
// <data-dir>/data) and
// the sockets and run-time state below its run dir.
type Layout struct {
	DataDir string
	RunDir  string
	Server  ServerPaths
	Agent   AgentPaths
	Run     RunPaths
	Storage string // <data-dir>/storage: local-path volumes
}

// ServerPaths is the server half, <data-dir>/server.
type ServerPaths struct {
	ServerDir       string // <data-dir>/server
	ConfigDir       string // <data-dir>/server/etc: generated component configs
	DBDir           string // <data-dir>/server/db
	SQLiteFile      string // <data-dir>/server/db/state.db
	TLSDir          string // <data-dir>/server/tls
	CredDir         string // <data-dir>/server/cred: component kubeconfigs
	AdminKubeconfig string // <data-dir>/server/cred/admin.kubeconfig: what server-side verbs use
	ManifestsDir    string // <data-dir>/server/manifests
	StaticDir       string // <data-dir>/server/static: charts HelmCharts name
	HelmDir         string // <data-dir>/server/helm: the Helm chart cache
	KineSocket      string // <data-dir>/server/kine.sock
	EtcdDir         string // <data-dir>/server/db/etcd: the embedded etcd member's data
	LockFile        string // <data-dir>/server/regente.lock
	SnapshotDir     string // <data-dir>/server/db/snapshots, unless --etcd-snapshot-dir
	TokenFile       string // <data-dir>/server/token: K10<CA hash>::server:<secret>
	NodeToken       string // <data-dir>/server/node-token: a link to token, where k3s users look
	AgentToken      string // <data-dir>/server/agent-token, with --agent-token
	RevokedFile     string // <data-dir>/server/token-revoked: hashes of rotated-out server secrets
	AuditLog        string // <data-dir>/server/logs/audit.log, with --profile cis
}

// AgentPaths is the node half, <data-dir>/agent.
type AgentPaths struct {
	AgentDir          string // <data-dir>/agent
	TLSDir            string // <data-dir>/agent/tls: the node's certificates
	ConfigDir         string // <data-dir>/agent/etc: generated configs and kubeconfigs
	KubeletKubeconfig string
	ProxyKubeconfig   string
	FlannelKubeconfig string
	CNIConfDir        string // <data-dir>/agent/etc/cni/net.d
	FlannelConfDir    string // <data-dir>/agent/etc/flannel
	IPAMDir           string // <data-dir>/agent/cni/networks: host-local leases
	KubeletDir        string // <data-dir>/agent/kubelet: the kubelet's root dir
	ImagesDir         string // <data-dir>/agent/images: tarballs imported at start
	NodePassword      string // <data-dir>/agent/node-password
	LBServersFile     string // <data-dir>/agent/etc/lb-servers.json: the servers the load balancer learned
	LockFile          string // <data-dir>/agent/regente.lock
}

// RunPaths is what lives below the run dir and goes with a reboot.
type RunPaths struct {
	ContainerdDir    string // <run-dir>/containerd: containerd's state dir
	ContainerdSocket string // <run-dir>/containerd/containerd.sock
	FlannelDir       string // <run-dir>/flannel: subnet.env
	DatastoreDir     string // <run-dir>/datastore: the tmpfs of --datastore-in-memory
}

// New returns the layout of the node whose dirs are dataDir and runDir.
func New(dataDir, runDir string) Layout {
	server := filepath.Join(dataDir, "server")
	db := filepath.Join(server, "db")
	agent := filepath.Join(dataDir, "agent")
	agentEtc := filepath.Join(agent, "etc")
	containerd := filepath.Join(runDir, "containerd")
	return Layout{
		DataDir: dataDir,
		RunDir:  runDir,
		Server: ServerPaths{
			ServerDir:       server,
			ConfigDir:       filepath.Join(server, "etc"),
			DBDir:           db,
			SQLiteFile:      filepath.Join(db, "state.db"),
			TLSDir:          filepath.Join(server, "tls"),
			CredDir:         filepath.Join(server, "cred"),
			AdminKubeconfig: filepath.Join(server, "cred", "admin.kubeconfig"),
			ManifestsDir:    filepath.Join(server, "manifests"),
			StaticDir:       filepath.Join(server, "static"),
			HelmDir:         filepath.Join(server, "helm"),
			KineSocket:      filepath.Join(server, "kine.sock"),
			EtcdDir:         filepath.Join(db, "etcd"),
			LockFile:        filepath.Join(server, "regente.lock"),
			SnapshotDir:     filepath.Join(db, "snapshots"),
			TokenFile:       filepath.Join(server, "token"),
			NodeToken:       filepath.Join(server, "node-token"),
			AgentToken:      filepath.Join(server, "agent-token"),
			RevokedFile:     filepath.Join(server, "token-revoked"),
			AuditLog:        filepath.Join(server, "logs", "audit.log"),
		},
		Agent: AgentPaths{
			AgentDir:          agent,
			TLSDir:            filepath.Join(agent, "tls"),
			ConfigDir:         agentEtc,
			KubeletKubeconfig: filepath.Join(agentEtc, "kubelet.kubeconfig"),
			ProxyKubeconfig:   filepath.Join(agentEtc, "kube-proxy.kubeconfig"),
			FlannelKubeconfig: filepath.Join(agentEtc, "flannel.kubeconfig"),
			CNIConfDir:        filepath.Join(agentEtc, "cni", "net.d"),
			FlannelConfDir:    filepath.Join(agentEtc, "flannel"),
			IPAMDir:           filepath.Join(agent, "cni", "networks"),
			KubeletDir:        filepath.Join(agent, "kubelet"),
			ImagesDir:         filepath.Join(agent, "images"),
			NodePassword:      filepath.Join(agent, "node-password"),
			LBServersFile:     filepath.Join(agentEtc, "lb-servers.json"),
			LockFile:          filepath.Join(agent, "regente.lock"),
		},
		Run: RunPaths{
			ContainerdDir:    containerd,
			ContainerdSocket: filepath.Join(containerd, "containerd.sock"),
			FlannelDir:       filepath.Join(runDir, "flannel"),
			DatastoreDir:     filepath.Join(runDir, "datastore"),
		},
		Storage: filepath.Join(dataDir, "storage"),
	}
}
