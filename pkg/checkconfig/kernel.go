package checkconfig

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
)

// module is a kernel feature regente's components use, by its module name
// and the Kconfig symbol that builds it.
type module struct {
	name, config string
	evidence     string  // a file under the root that exists only when the feature is in the kernel
	alt          *module // a module that serves instead, or nil
	optional     bool
	why          string
}

// nodeModules are the kernel features a node needs: pod networking
// (bridge, veth, flannel's vxlan), Service NAT (kube-proxy's iptables
// rules) and NetworkPolicy (nftables queueing).
var nodeModules = []module{
	{name: "br_netfilter", config: "BRIDGE_NETFILTER", evidence: "proc/sys/net/bridge/bridge-nf-call-iptables", why: "Service traffic between pods on one bridge"},
	{name: "bridge", config: "BRIDGE", why: "the regente0 bridge pods attach to"},
	{name: "veth", config: "VETH", why: "pod network interfaces"},
	{name: "vxlan", config: "VXLAN", why: "flannel's vxlan backend"},
	{name: "nf_conntrack", config: "NF_CONNTRACK", evidence: "proc/sys/net/netfilter/nf_conntrack_max", why: "Service NAT"},
	{name: "nf_nat", config: "NF_NAT", why: "Service NAT"},
	{name: "ip_tables", config: "IP_NF_IPTABLES", alt: &module{name: "nf_tables", config: "NF_TABLES"}, why: "iptables rules (legacy or nf_tables backend)"},
	{name: "xt_conntrack", config: "NETFILTER_XT_MATCH_CONNTRACK", why: "kube-proxy's iptables rules"},
	{name: "xt_comment", config: "NETFILTER_XT_MATCH_COMMENT", why: "kube-proxy's iptables rules"},
	{name: "xt_mark", config: "NETFILTER_XT_MARK", why: "kube-proxy's iptables rules"},
	{name: "xt_addrtype", config: "NETFILTER_XT_MATCH_ADDRTYPE", why: "kube-proxy's iptables rules"},
	{name: "xt_statistic", config: "NETFILTER_XT_MATCH_STATISTIC", why: "kube-proxy's load balancing"},
	{name: "xt_MASQUERADE", config: "NETFILTER_XT_TARGET_MASQUERADE", why: "pod traffic leaving the node"},
	// Without nft_queue, regente queues through iptables NFQUEUE, which
	// holds every new pod connection for a verdict (pkg/netpol); without
	// both, NetworkPolicy is not enforced.
	{name: "nft_queue", config: "NFT_QUEUE", alt: &module{name: "xt_NFQUEUE", config: "NETFILTER_XT_TARGET_NFQUEUE"}, optional: true,
		why: "NetworkPolicy, which is not enforced on this node without it or xt_NFQUEUE (or pass --disable-network-policy)"},
}

// kernel is what the host says about its kernel's modules.
type kernel struct {
	release  string
	loaded   map[string]bool   // /proc/modules
	builtin  map[string]bool   // modules.builtin; nil when absent
	loadable map[string]bool   // modules.dep; nil when absent
	config   map[string]string // CONFIG_X → "y" or "m"; nil when no kernel config is readable
}

type moduleState int

const (
	unknown moduleState = iota
	absent
	loadable
	present
)

func readKernel(root string) kernel {
	h := host{Options{Root: root}}
	k := kernel{release: h.read("proc/sys/kernel/osrelease"), loaded: map[string]bool{}}
	for _, line := range strings.Split(h.read("proc/modules"), "\n") {
		if name, _, ok := strings.Cut(line, " "); ok {
			k.loaded[moduleName(name)] = true
		}
	}
	dir := path.Join("lib/modules", k.release)
	k.builtin = moduleList(h.path(path.Join(dir, "modules.builtin")))
	k.loadable = moduleList(h.path(path.Join(dir, "modules.dep")))
	if f, err := os.Open(h.path("proc/config.gz")); err == nil {
		defer f.Close()
		if z, err := gzip.NewReader(f); err == nil {
			k.config = kernelConfig(z)
		}
	} else if f, err := os.Open(h.path("boot/config-" + k.release)); err == nil {
		defer f.Close()
		k.config = kernelConfig(f)
	}
	return k
}

// moduleName normalises as the kernel does: "-" and "_" are the same.
func moduleName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleList reads the module names of modules.builtin or modules.dep,
// whose lines start with a path like kernel/net/bridge/br_netfilter.ko.zst.
func moduleList(file string) map[string]bool {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	names := map[string]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		p, _, _ := strings.Cut(s.Text(), ":")
		if name, _, ok := strings.Cut(path.Base(p), ".ko"); ok {
			names[moduleName(name)] = true
		}
	}
	return names
}

func kernelConfig(r io.Reader) map[string]string {
	cfg := map[string]string{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			cfg[strings.TrimPrefix(k, "CONFIG_")] = v
		}
	}
	return cfg
}

func (h host) moduleState(k kernel, m module) moduleState {
	switch {
	case k.loaded[m.name], h.exists("sys/module/" + m.name), m.evidence != "" && h.exists(m.evidence),
		k.builtin[m.name], k.config[m.config] == "y":
		return present
	case k.loadable[m.name], k.config[m.config] == "m":
		return loadable
	case k.config != nil, k.builtin != nil && k.loadable != nil:
		return absent
	}
	return unknown
}

// modules reports the kernel features as one line when all are there, and
// one line for each that is not.
func (h host) modules(k kernel) []Result {
	var results []Result
	var ok []string
	for _, m := range nodeModules {
		state := h.moduleState(k, m)
		if state == present {
			ok = append(ok, m.name)
			continue
		}
		if m.alt != nil {
			if altState := h.moduleState(k, *m.alt); altState == present {
				if !m.optional {
					ok = append(ok, m.alt.name)
					continue
				}
				results = append(results, Result{"module " + m.name, Warn,
					fmt.Sprintf("%s; %s serves instead, less efficiently", state, m.alt.name), h.moduleFix(m, state)})
				continue
			}
		}
		status := Fail
		if m.optional {
			status = Warn
		}
		if state == loadable {
			status = Warn
		}
		results = append(results, Result{"module " + m.name, status, fmt.Sprintf("%s; needed for %s", state, m.why), h.moduleFix(m, state)})
	}
	if len(ok) > 0 {
		results = append([]Result{{Name: "kernel modules", Status: OK, Detail: strings.Join(ok, " ")}}, results...)
	}
	return results
}

func (s moduleState) String() string {
	switch s {
	case absent:
		return "not in this kernel, built in or as a module"
	case loadable:
		return "not loaded"
	case present:
		return "present"
	}
	return "cannot tell whether the kernel has it (no /proc/modules entry, modules.builtin or kernel config)"
}

func (h host) moduleFix(m module, state moduleState) string {
	if state == absent {
		return fmt.Sprintf("boot a kernel built with CONFIG_%s=y or =m", m.config)
	}
	// Loading is not enough: a reboot forgets it unless modules-load.d says so.
	return fmt.Sprintf("modprobe %s && echo %s >> /etc/modules-load.d/regente.conf", m.name, m.name)
}

// overlay reports whether containerd can use its overlayfs snapshotter;
// without it containerd falls back to the native one (see pkg/runtime).
func (h host) overlay(k kernel) Result {
	const name = "overlayfs"
	for _, line := range strings.Split(h.read("proc/filesystems"), "\n") {
		if strings.TrimSpace(strings.TrimPrefix(line, "nodev")) == "overlay" {
			return Result{Name: name, Status: OK, Detail: "supported; containerd uses the overlayfs snapshotter"}
		}
	}
	const slow = "containerd falls back to the native snapshotter, which copies every image layer in full (slower, more disk)"
	m := module{name: "overlay", config: "OVERLAY_FS"}
	if state := h.moduleState(k, m); state != absent {
		return Result{name, Warn, "overlay is not in /proc/filesystems: " + slow, h.moduleFix(m, loadable)}
	}
	return Result{name, Warn, "this kernel has no overlayfs: " + slow, h.moduleFix(m, absent)}
}

// kernelVersion warns below 4.19, the oldest kernel Kubernetes supports.
func (h host) kernelVersion() Result {
	rel := h.read("proc/sys/kernel/osrelease")
	var major, minor int
	if v, rest, ok := strings.Cut(rel, "."); ok {
		major, _ = strconv.Atoi(v)
		digits := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if digits < 0 {
			digits = len(rest)
		}
		minor, _ = strconv.Atoi(rest[:digits])
	}
	switch {
	case rel == "":
		return Result{"kernel", Warn, "cannot read /proc/sys/kernel/osrelease", "mount /proc (mount -t proc proc /proc)"}
	case major < 4 || major == 4 && minor < 19:
		return Result{"kernel", Warn, rel + ": older than 4.19, the oldest kernel Kubernetes supports", "upgrade to a kernel 4.19 or newer (5.8 or newer for cgroup v2)"}
	}
	return Result{Name: "kernel", Status: OK, Detail: rel}
}
