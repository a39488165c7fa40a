package config

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/datastore/backend"
	"regente.io/regente/pkg/redact"
)

// maxSocketPath is the longest unix socket path Linux accepts (sun_path is
// 108 bytes including the terminating NUL).
const maxSocketPath = 107

// kubeletSocket is the longest socket path the kubelet creates under the
// data dir: its pod-resources socket, named with ten random digits.
func kubeletSocket(dataDir string) string {
	return filepath.Join(datadir.New(dataDir, "").Agent.KubeletDir, "pod-resources", "1234567890")
}

// Validate reports every problem with s at once, each naming the flag and the
// fix. Call Complete first, so that derived values are filled in.
func (s *Server) Validate() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	cluster, clusterErr := parseCIDR("cluster-cidr", s.ClusterCIDR, "10.42.0.0/16")
	svc, svcErr := parseCIDR("service-cidr", s.ServiceCIDR, "10.43.0.0/16")
	errs = append(errs, clusterErr, svcErr)
	if clusterErr == nil && svcErr == nil && cluster.Overlaps(svc) {
		fail("--cluster-cidr %s and --service-cidr %s overlap: pick disjoint ranges, e.g. the defaults 10.42.0.0/16 and 10.43.0.0/16", cluster, svc)
	}
	if svcErr == nil {
		if svc.Addr().BitLen()-svc.Bits() < 4 {
			fail("--service-cidr %s is too small: it must hold at least 11 addresses, the 10th being the cluster DNS; use a /%d or larger range", svc, svc.Addr().BitLen()-4)
		} else {
			s.validateClusterDNS(svc, fail)
		}
	}

	s.validateNode(fail)
	if !slices.Contains([]string{"aescbc", "secretbox"}, s.SecretsEncryptionProvider) {
		fail("--secrets-encryption-provider %q is not aescbc or secretbox: use one of them (aescbc is the default)", s.SecretsEncryptionProvider)
	}
	if s.HTTPSListenPort < 1 || s.HTTPSListenPort > 65535 {
		fail("--https-listen-port %d is out of range: use a port between 1 and 65535, e.g. 6443", s.HTTPSListenPort)
	}
	checkIP := func(flag, v string) {
		if _, err := netip.ParseAddr(v); err != nil {
			fail("--%s %q is not an IP address: give an IPv4 or IPv6 address, e.g. 192.168.1.10", flag, v)
		}
	}
	checkIP("bind-address", s.BindAddress)
	// Pods reach the API server through the kubernetes Service, whose
	// endpoint is the advertise address on this port: a loopback-only
	// listener leaves every in-cluster client (CoreDNS among them) unable
	// to connect.
	if bind, err := netip.ParseAddr(s.BindAddress); err == nil && bind.IsLoopback() && !s.DisableAgent {
		fail("--bind-address %s is loopback, but pods reach the API server at the node's address: bind 0.0.0.0 (the default) or the node IP, or run the control plane alone with --disable-agent", s.BindAddress)
	}
	if s.AdvertiseAddress != "" {
		checkIP("advertise-address", s.AdvertiseAddress)
	}
	for _, ip := range s.NodeIPs {
		checkIP("node-ip", ip)
	}
	for _, ip := range s.NodeExternalIPs {
		checkIP("node-external-ip", ip)
	}
	for _, san := range s.TLSSANs {
		if err := checkSAN(san); err != nil {
			errs = append(errs, err)
		}
	}

	switch {
	case s.DataDir == "":
		fail("--data-dir is empty: set it to an absolute path, e.g. /var/lib/regente")
	case !filepath.IsAbs(s.DataDir):
		fail("--data-dir %q is a relative path: use an absolute path, e.g. /var/lib/regente", s.DataDir)
	case len(s.Paths().KineSocket) > maxSocketPath:
		fail("--data-dir %q is too long: the datastore socket %s would exceed the %d-byte limit of unix socket paths; use a shorter path", s.DataDir, s.Paths().KineSocket, maxSocketPath)
	case !s.DisableAgent && len(kubeletSocket(s.DataDir)) > maxSocketPath:
		fail("--data-dir %q is too long: the kubelet's sockets, such as %s, would exceed the %d-byte limit of unix socket paths; use a shorter path", s.DataDir, kubeletSocket(s.DataDir), maxSocketPath)
	}
	if !filepath.IsAbs(s.RunDir) {
		fail("--run-dir %q is not an absolute path: use one, e.g. %s", s.RunDir, datadir.DefaultRunDir)
	}

	if m, err := strconv.ParseUint(s.WriteKubeconfigMode, 8, 32); err != nil || m > 0o777 {
		fail("--write-kubeconfig-mode %q is not a file mode: give octal permissions up to 0777, e.g. 0600 (owner only) or 0644 (readable by all)", s.WriteKubeconfigMode)
	}

	errs = append(errs, s.datastoreErr)

	if s.Server != "" {
		switch u, err := url.Parse(s.Server); {
		case err != nil || u.Host == "" || u.Scheme != "https":
			fail("--server %q must be the https URL of an existing server, e.g. https://192.168.1.10:6443", s.Server)
		case s.ClusterInit:
			fail("--cluster-init starts a new cluster and --server joins an existing one: give only one of them (--server on every server but the first)")
		case s.Token == "" && s.TokenFile == "":
			fail("--server needs the server token: give --token or --token-file with the content of <data-dir>/server/token on the first server")
		}
	}
	if s.DatastoreInMemory {
		switch {
		case s.DatastoreEndpoint != "":
			fail("--datastore-in-memory keeps regente's own SQLite datastore in memory, not %s: drop one of them", redact.Endpoint(s.DatastoreEndpoint))
		case s.Datastore.Kind == backend.EmbeddedEtcd:
			fail("--datastore-in-memory keeps the SQLite datastore of a single server in memory; embedded etcd (--cluster-init, --server, or an etcd member in the data dir) replicates instead: drop --datastore-in-memory")
		case s.DatastoreSaveInterval < time.Second:
			fail("--datastore-save-interval %s is too short: give at least 1s, e.g. 10m (each save writes the whole datastore)", s.DatastoreSaveInterval)
		}
	}
	if s.ClusterInit && s.DatastoreEndpoint != "" {
		fail("--cluster-init keeps the datastore in embedded etcd, but --datastore-endpoint %s names an external one: give only one of them", redact.Endpoint(s.DatastoreEndpoint))
	}
	for flag, file := range map[string]string{"--datastore-cafile": s.DatastoreCAFile, "--datastore-certfile": s.DatastoreCertFile, "--datastore-keyfile": s.DatastoreKeyFile} {
		switch {
		case file == "":
		case s.DatastoreEndpoint == "":
			fail("%s configures TLS to an external datastore: give --datastore-endpoint too, or drop it (SQLite and embedded etcd use regente's own certificates)", flag)
		default:
			if _, err := os.Stat(file); err != nil {
				fail("%s %s: %v", flag, file, err)
			}
		}
	}
	if (s.DatastoreCertFile == "") != (s.DatastoreKeyFile == "") {
		fail("--datastore-certfile and --datastore-keyfile go together: give both, or neither")
	}
	switch {
	case s.ClusterResetRestorePath != "" && !s.ClusterReset:
		fail("--cluster-reset-restore-path needs --cluster-reset: restoring replaces the datastore, so say so with both flags")
	case s.ClusterReset && s.DatastoreEndpoint != "":
		fail("--cluster-reset restores regente's own datastore, not %s: restore that database with its own tools", redact.Endpoint(s.DatastoreEndpoint))
	}
	if s.SnapshotRetention < 1 {
		fail("--etcd-snapshot-retention %d: keep at least 1 snapshot, or turn scheduled snapshots off with --etcd-disable-snapshots", s.SnapshotRetention)
	}
	if _, err := cron.ParseStandard(s.SnapshotScheduleCron); err != nil {
		fail("--etcd-snapshot-schedule-cron %q is not a cron schedule (%v): use five fields, e.g. \"0 */12 * * *\" for every 12 hours", s.SnapshotScheduleCron, err)
	}

	if strings.Contains(s.SystemDefaultRegistry, "://") {
		fail("--system-default-registry %q: give a host[:port][/path] without a scheme, e.g. mirror.example.com:5000", s.SystemDefaultRegistry)
	}

	if !slices.Contains(FlannelBackends, s.FlannelBackend) {
		fail("--flannel-backend %q is not supported: use one of %s (none: bring your own CNI)", s.FlannelBackend, strings.Join(FlannelBackends, ", "))
	}

	errs = append(errs, checkComponentArgs(map[string][]string{
		"kube-apiserver-arg":          s.KubeAPIServerArgs,
		"kube-controller-manager-arg": s.KubeControllerManagerArgs,
		"kube-scheduler-arg":          s.KubeSchedulerArgs,
		"kubelet-arg":                 s.KubeletArgs,
		"kube-proxy-arg":              s.KubeProxyArgs,
	}), s.S3.Validate())
	return errors.Join(errs...)
}

// checkComponentArgs checks that every *-arg entry names its flag.
func checkComponentArgs(byFlag map[string][]string) error {
	var errs []error
	for _, flag := range slices.Sorted(maps.Keys(byFlag)) {
		for _, a := range byFlag[flag] {
			if key, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); key == "" {
				errs = append(errs, fmt.Errorf("--%s %q: missing the flag name before \"=\": write name=value, e.g. v=2", flag, a))
			}
		}
	}
	return errors.Join(errs...)
}

// parseCIDR parses one CIDR flag; example is a good value to show the user.
func parseCIDR(flag, v, example string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(v)
	switch {
	case err != nil && strings.Contains(v, ","):
		return p, fmt.Errorf("--%s %q: only one range is supported (no dual-stack lists); give a single CIDR, e.g. %s", flag, v, example)
	case err != nil:
		return p, fmt.Errorf("--%s %q is not a CIDR: write address/prefix-length, e.g. %s", flag, v, example)
	case p != p.Masked():
		return p, fmt.Errorf("--%s %q has bits set after the prefix length: did you mean %s?", flag, v, p.Masked())
	}
	return p, nil
}

func (s *Server) validateClusterDNS(svc netip.Prefix, fail func(string, ...any)) {
	def, _ := nthAddr(svc, 10)
	dns, err := netip.ParseAddr(s.ClusterDNS)
	switch {
	case s.ClusterDNS == "":
		fail("--cluster-dns is empty: set it, or call Complete before Validate to derive it from --service-cidr")
	case err != nil:
		fail("--cluster-dns %q is not an IP address: leave it empty to use the 10th address of --service-cidr (%s)", s.ClusterDNS, def)
	case !svc.Contains(dns):
		fail("--cluster-dns %s is outside --service-cidr %s: pick an address inside it, or leave --cluster-dns empty to use %s", dns, svc, def)
	case dns == svc.Addr():
		fail("--cluster-dns %s is the network address of --service-cidr %s: pick another, e.g. %s", dns, svc, def)
	case dns == svc.Addr().Next():
		fail("--cluster-dns %s is the first address of --service-cidr %s, which belongs to the kubernetes API service: pick another, e.g. %s", dns, svc, def)
	}
}

// checkSAN rejects --tls-san entries that cannot be a certificate name.
func checkSAN(san string) error {
	switch {
	case san == "":
		return errors.New("--tls-san has an empty entry: remove it")
	case strings.Contains(san, "://"):
		host := san
		if u, err := url.Parse(san); err == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
		return fmt.Errorf("--tls-san %q: give a bare host name or IP without a scheme, e.g. %q", san, host)
	case strings.ContainsAny(san, " \t\r\n"):
		return fmt.Errorf("--tls-san %q contains whitespace: give one host name or IP per entry", san)
	case strings.Contains(san, ","):
		return fmt.Errorf("--tls-san %q contains a comma: give each name as its own entry (in a config file, a YAML list: tls-san: [a, b])", san)
	}
	return nil
}
