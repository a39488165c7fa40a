package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"regente.io/regente/pkg/datadir"
)

// Agent holds every option of `regente agent`, loaded like Server's.
type Agent struct {
	Node
	ConfigFile   string // --config
	DataDir      string // --data-dir
	Server       string // --server; also REGENTE_URL, as k3s's K3S_URL
	Token        string // --token
	TokenFile    string // --token-file
	RunDir       string // --run-dir
	LBServerPort int    // --lb-server-port
	Debug        bool   // --debug

	notes []string // what loading skipped, for the log
}

// Notes are what loading the options skipped and the user should hear of:
// unknown config file keys, server-only keys.
func (a *Agent) Notes() []string { return a.notes }

// NewAgent returns an Agent holding the defaults.
func NewAgent() *Agent {
	return &Agent{
		ConfigFile:   DefaultConfigFile,
		DataDir:      datadir.DefaultDataDir,
		RunDir:       datadir.DefaultRunDir,
		LBServerPort: 6444,
		Node:         Node{PrivateRegistry: DefaultPrivateRegistry},
	}
}

// AddFlags registers every option on fs, bound to a.
func (a *Agent) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&a.ConfigFile, "config", a.ConfigFile, "YAML config file; <file>.d/*.yaml drop-ins apply after it in name order (env REGENTE_CONFIG)")
	fs.StringVar(&a.DataDir, "data-dir", a.DataDir, "Absolute directory for all node state: certificates, containerd, kubelet")
	fs.StringVar(&a.Server, "server", a.Server, "https URL of a server to join, e.g. https://192.168.1.10:6443 (env REGENTE_URL)")
	fs.StringVar(&a.Token, "token", a.Token, "Join token: the content of <data-dir>/server/token on a server, or a token from `regente token create`")
	fs.StringVar(&a.TokenFile, "token-file", a.TokenFile, "File holding --token")
	fs.StringVar(&a.RunDir, "run-dir", a.RunDir, "Directory for sockets and runtime state (containerd, flannel); one per node on a host")
	fs.IntVar(&a.LBServerPort, "lb-server-port", a.LBServerPort, "Port on 127.0.0.1 of the load balancer the node's components reach the servers through")
	fs.BoolVar(&a.Debug, "debug", a.Debug, "Log at debug level")
	a.Node.addFlags(fs)
}

// Layout returns the node's directory layout.
func (a *Agent) Layout() datadir.Layout { return datadir.New(a.DataDir, a.RunDir) }

// LoadAgent builds an Agent as LoadServer builds a Server; REGENTE_URL sets
// --server when REGENTE_SERVER does not.
func LoadAgent(args []string, lookupEnv func(string) (string, bool)) (*Agent, error) {
	a := NewAgent()
	fs := pflag.NewFlagSet("regente agent", pflag.ContinueOnError)
	a.AddFlags(fs)
	// A config file shared with a server may hold server options.
	serverFlags := pflag.NewFlagSet("regente server", pflag.ContinueOnError)
	NewServer().AddFlags(serverFlags)
	notes, err := loadFlags(loadRules{verb: "agent", otherRole: serverFlags, otherVerb: "server"}, fs, &a.ConfigFile, args, lookupEnv)
	if err != nil {
		return nil, err
	}
	a.notes = notes
	for _, args := range []*[]string{&a.KubeletArgs, &a.KubeProxyArgs} {
		for i, v := range *args {
			(*args)[i] = strings.TrimLeft(v, "-")
		}
	}
	return a, nil
}

// Validate reports every problem with a at once, each naming the flag and
// the fix.
func (a *Agent) Validate() error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch u, err := url.Parse(a.Server); {
	case a.Server == "":
		fail("--server is not set: give the https URL of a server, e.g. --server https://192.168.1.10:6443 (or REGENTE_URL)")
	case err != nil || u.Host == "":
		fail("--server %q is not a URL: give the https URL of a server, e.g. https://192.168.1.10:6443", a.Server)
	case u.Scheme != "https":
		fail("--server %q must be an https:// URL: the join and the API are TLS only, e.g. https://%s", a.Server, u.Host)
	}
	if a.Token == "" && a.TokenFile == "" {
		fail("no join token: give --token (or REGENTE_TOKEN) or --token-file, with the content of <data-dir>/server/token on the server")
	}
	for _, ips := range []struct {
		flag string
		list []string
	}{{"node-ip", a.NodeIPs}, {"node-external-ip", a.NodeExternalIPs}} {
		for _, ip := range ips.list {
			if _, err := netip.ParseAddr(ip); err != nil {
				fail("--%s %q is not an IP address: give an IPv4 or IPv6 address, e.g. 192.168.1.11", ips.flag, ip)
			}
		}
	}
	a.validateNode(fail)
	if a.LBServerPort < 1 || a.LBServerPort > 65535 {
		fail("--lb-server-port %d is out of range: use a port between 1 and 65535, e.g. 6444", a.LBServerPort)
	}
	for _, dir := range []struct{ flag, path string }{{"data-dir", a.DataDir}, {"run-dir", a.RunDir}} {
		if !filepath.IsAbs(dir.path) {
			fail("--%s %q is not an absolute path: use one, e.g. /var/lib/regente", dir.flag, dir.path)
		}
	}
	if filepath.IsAbs(a.DataDir) && len(kubeletSocket(a.DataDir)) > maxSocketPath {
		fail("--data-dir %q is too long: the kubelet's sockets, such as %s, would exceed the %d-byte limit of unix socket paths; use a shorter path", a.DataDir, kubeletSocket(a.DataDir), maxSocketPath)
	}
	errs = append(errs, checkComponentArgs(map[string][]string{"kubelet-arg": a.KubeletArgs, "kube-proxy-arg": a.KubeProxyArgs}))
	return errors.Join(errs...)
}
