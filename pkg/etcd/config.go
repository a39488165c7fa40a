package etcd

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.etcd.io/etcd/server/v3/embed"
	"sigs.k8s.io/yaml"

	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/certs"
)

// Ports are etcd's well-known ones, as every etcd tool expects.
const (
	ClientPort  = 2379
	PeerPort    = 2380
	metricsPort = 2381
)

// LocalEndpoint is where this server's apiserver and tools reach its member.
const LocalEndpoint = "https://127.0.0.1:2379"

// PeerURL is the member's peer address on the node IP.
func PeerURL(ip net.IP) string { return peerURL(ip) }

// peerURL and clientURL are the member's addresses on the node IP.
func peerURL(ip net.IP) string {
	return "https://" + net.JoinHostPort(ip.String(), strconv.Itoa(PeerPort))
}

func clientURL(ip net.IP) string {
	return "https://" + net.JoinHostPort(ip.String(), strconv.Itoa(ClientPort))
}

// managedKeys are set by regente from the node's addresses and the PKI; an
// --etcd-arg cannot change them without breaking the cluster.
var managedKeys = []string{"name", "data-dir", "listen-client-urls", "advertise-client-urls", "listen-peer-urls",
	"initial-advertise-peer-urls", "initial-cluster", "initial-cluster-state", "client-transport-security",
	"peer-transport-security", "force-new-cluster"}

// ParseArgs turns --etcd-arg key=value values into config file entries,
// refusing keys etcd does not know and keys regente manages. Values are
// read as YAML scalars, so numbers and booleans keep their types.
func ParseArgs(args []string) (map[string]any, error) {
	out := map[string]any{}
	for _, a := range args {
		key, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("--etcd-arg %q: write it as key=value, e.g. quota-backend-bytes=4294967296", a)
		}
		for _, m := range managedKeys {
			if key == m {
				return nil, fmt.Errorf("--etcd-arg %q: regente sets %s itself from the node's address and certificates; remove it", a, key)
			}
		}
		var v any
		if err := yaml.Unmarshal([]byte(value), &v); err != nil || v == nil {
			v = value
		}
		one, _ := json.Marshal(map[string]any{key: v})
		var probe embed.Config
		if err := yaml.UnmarshalStrict(one, &probe); err != nil {
			return nil, fmt.Errorf("--etcd-arg %q is not an etcd setting this etcd accepts (%v): use etcd's config-file key, e.g. heartbeat-interval=500", a, err)
		}
		out[key] = v
	}
	return out, nil
}

// memberConfig is what one start of the member needs.
type memberConfig struct {
	name           string
	ip             net.IP
	initialCluster string
	state          string // "new" or "existing"
	forceNew       bool
}

// writeConfig renders etcd's config file (config-file keys are etcd's flag
// names) and loads it through embed, the path etcd itself reads configs on.
func (e *Etcd) writeConfig(m memberConfig) (*embed.Config, error) {
	pki := certs.Layout(e.cfg.TLSDir)
	tls := map[string]any{
		"cert-file":        pki.EtcdServer.Cert,
		"key-file":         pki.EtcdServer.Key,
		"trusted-ca-file":  pki.EtcdCA.Cert,
		"client-cert-auth": true,
	}
	doc := map[string]any{
		// A slow 2-core edge box must not lose its leader on every GC pause.
		"heartbeat-interval":          500,
		"election-timeout":            5000,
		"snapshot-count":              10000,
		"quota-backend-bytes":         int64(2 << 30), // int is 32 bits on armv7
		"log-level":                   "warn",
		"logger":                      "zap",
		"log-outputs":                 []string{"stderr"},
		"listen-metrics-urls":         "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort)),
		"name":                        m.name,
		"data-dir":                    e.cfg.Dir,
		"listen-client-urls":          LocalEndpoint + "," + clientURL(m.ip),
		"advertise-client-urls":       clientURL(m.ip),
		"listen-peer-urls":            peerURL(m.ip),
		"initial-advertise-peer-urls": peerURL(m.ip),
		"initial-cluster":             m.initialCluster,
		"initial-cluster-state":       m.state,
		"initial-cluster-token":       "regente",
		"client-transport-security":   tls,
		"peer-transport-security":     tls,
		"force-new-cluster":           m.forceNew,
	}
	for k, v := range e.cfg.Args {
		doc[k] = v
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(filepath.Dir(e.cfg.Dir), "etcd-config.yaml")
	if err := atomicfile.Write(atomicfile.File{Path: path, Data: b, Mode: 0o600}); err != nil {
		return nil, fmt.Errorf("write etcd config: %w", err)
	}
	cfg, err := embed.ConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load etcd config %s (check --etcd-arg): %w", path, err)
	}
	return cfg, nil
}

// hasData reports whether dir holds a member's data.
func hasData(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "member", "wal"))
	return err == nil
}

// HasData reports whether the etcd data dir holds a member: a server that
// once ran etcd keeps running it.
func HasData(dir string) bool { return hasData(dir) }
