package checkconfig

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// allConfig builds every module regente wants into the kernel.
var allConfig = func() map[string]string {
	cfg := map[string]string{"OVERLAY_FS": "y"}
	for _, m := range nodeModules {
		cfg[m.config] = "y"
	}
	return cfg
}()

// fakeRoot writes files under a temporary root; a nil value makes a
// directory.
func fakeRoot(t *testing.T, files map[string]*string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if content == nil {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(*content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func s(v string) *string { return &v }

// healthyHost is a cgroup v2 host with everything regente needs.
func healthyHost(config map[string]string) map[string]*string {
	var cfg strings.Builder
	for k, v := range config {
		if v == "" {
			cfg.WriteString("# CONFIG_" + k + " is not set\n")
		} else {
			cfg.WriteString("CONFIG_" + k + "=" + v + "\n")
		}
	}
	return map[string]*string{
		"proc/sys/kernel/osrelease":        s("6.1.0-18-amd64\n"),
		"boot/config-6.1.0-18-amd64":       s(cfg.String()),
		"proc/self/mounts":                 s("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n"),
		"sys/fs/cgroup/cgroup.controllers": s("cpuset cpu io memory hugetlb pids\n"),
		"proc/filesystems":                 s("nodev\ttmpfs\nnodev\toverlay\n\text4\n"),
		"proc/swaps":                       s("Filename\tType\tSize\tUsed\tPriority\n"),
		"proc/sys/net/ipv4/ip_forward":     s("1\n"),
	}
}

func check(t *testing.T, files map[string]*string, tools ...Tool) []Result {
	t.Helper()
	return Run(Options{
		Root: fakeRoot(t, files), DataDir: t.TempDir(), Node: true, Tools: tools,
		LookPath: func(p string) (string, error) {
			if p == "conntrack" {
				return "", errors.New("not found")
			}
			return "/usr/sbin/" + p, nil
		},
		Listen: func(string, string) error { return nil },
	})
}

func find(t *testing.T, results []Result, name string) Result {
	t.Helper()
	for _, r := range results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no %q in %+v", name, results)
	return Result{}
}

func TestMissingOverlaySwapOnAndMissingModule(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(map[string]string, map[string]*string)
		tools  []Tool
		want   map[string]Status
		fixes  map[string]string // finding → part of its fix
		canRun bool
	}{{
		name:   "healthy",
		edit:   func(map[string]string, map[string]*string) {},
		want:   map[string]Status{"overlayfs": OK, "swap": OK, "kernel modules": OK, "cgroups": OK, "cgroup controllers": OK, "ip_forward": OK},
		canRun: true,
	}, {
		name: "no overlay in the kernel, swap on",
		edit: func(cfg map[string]string, f map[string]*string) {
			cfg["OVERLAY_FS"] = ""
			f["proc/filesystems"] = s("nodev\ttmpfs\n\text4\n")
			f["proc/swaps"] = s("Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048572 0 -2\n")
		},
		want:   map[string]Status{"overlayfs": Warn, "swap": Warn},
		fixes:  map[string]string{"overlayfs": "CONFIG_OVERLAY_FS", "swap": "swapoff -a"},
		canRun: true,
	}, {
		name: "overlay loadable but not loaded",
		edit: func(cfg map[string]string, f map[string]*string) {
			cfg["OVERLAY_FS"] = "m"
			f["proc/filesystems"] = s("nodev\ttmpfs\n")
		},
		want:   map[string]Status{"overlayfs": Warn},
		fixes:  map[string]string{"overlayfs": "modprobe overlay"},
		canRun: true,
	}, {
		name: "no overlay, swap on, no br_netfilter, no conntrack tool",
		edit: func(cfg map[string]string, f map[string]*string) {
			cfg["OVERLAY_FS"], cfg["BRIDGE_NETFILTER"] = "", ""
			f["proc/filesystems"] = s("nodev\ttmpfs\n")
			f["proc/swaps"] = s("Filename\tType\tSize\tUsed\tPriority\n/dev/sda2 partition 1048572 0 -2\n")
		},
		tools:  []Tool{{Program: "iptables", Package: "iptables"}, {Program: "conntrack", Package: "conntrack", Why: "kube-proxy"}},
		want:   map[string]Status{"overlayfs": Warn, "swap": Warn, "module br_netfilter": Fail, "tool conntrack": Fail, "host tools": OK},
		fixes:  map[string]string{"swap": "swapoff -a", "module br_netfilter": "CONFIG_BRIDGE_NETFILTER", "tool conntrack": "apt-get install conntrack"},
		canRun: false,
	}, {
		name:   "no nft_queue: NetworkPolicy falls back to xt_NFQUEUE",
		edit:   func(cfg map[string]string, _ map[string]*string) { cfg["NFT_QUEUE"] = "" },
		want:   map[string]Status{"module nft_queue": Warn, "kernel modules": OK},
		fixes:  map[string]string{"module nft_queue": "CONFIG_NFT_QUEUE"},
		canRun: true,
	}, {
		name:  "ip_forward missing",
		edit:  func(_ map[string]string, f map[string]*string) { delete(f, "proc/sys/net/ipv4/ip_forward") },
		want:  map[string]Status{"ip_forward": Fail},
		fixes: map[string]string{"ip_forward": "sysctl -w net.ipv4.ip_forward=1"},
	}, {
		name: "ip_forward off but writable",
		edit: func(_ map[string]string, f map[string]*string) { f["proc/sys/net/ipv4/ip_forward"] = s("0\n") },
		want: map[string]Status{"ip_forward": OK}, canRun: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := map[string]string{}
			for k, v := range allConfig {
				cfg[k] = v
			}
			files := healthyHost(allConfig)
			tt.edit(cfg, files)
			files["boot/config-6.1.0-18-amd64"] = healthyHost(cfg)["boot/config-6.1.0-18-amd64"]
			results := check(t, files, tt.tools...)
			for name, want := range tt.want {
				if got := find(t, results, name); got.Status != want {
					t.Errorf("%s: got %v (%s), want %v", name, got.Status, got.Detail, want)
				}
			}
			for name, fix := range tt.fixes {
				if got := find(t, results, name).Fix; !strings.Contains(got, fix) {
					t.Errorf("%s: fix %q does not say %q", name, got, fix)
				}
			}
			for _, r := range results {
				if r.Status != OK && r.Fix == "" {
					t.Errorf("%s is %v without a fix", r.Name, r.Status)
				}
			}
			if got := CanRun(results); got != tt.canRun {
				t.Errorf("CanRun = %v, want %v; results: %+v", got, tt.canRun, results)
			}
		})
	}
}

func TestCgroupV1Hybrid(t *testing.T) {
	files := healthyHost(allConfig)
	files["proc/self/mounts"] = s(`tmpfs /sys/fs/cgroup tmpfs rw 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/devices cgroup rw,relatime,devices 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
`)
	files["proc/cgroups"] = s(`#subsys_name	hierarchy	num_cgroups	enabled
cpuset	3	1	1
cpu	1	1	1
cpuacct	2	1	1
memory	4	16	1
devices	5	1	1
hugetlb	0	1	1
pids	8	1	1
`)
	results := check(t, files)
	cg := find(t, results, "cgroups")
	if cg.Status != Warn || !strings.Contains(cg.Detail, "cgroup v1 (hybrid") || !strings.Contains(cg.Fix, "systemd.unified_cgroup_hierarchy=1") {
		t.Errorf("cgroups: %+v", cg)
	}
	ctl := find(t, results, "cgroup controllers")
	if ctl.Status != Warn || !strings.Contains(ctl.Detail, "hugetlb") || !strings.Contains(ctl.Fix, "mount -t cgroup -o hugetlb") {
		t.Errorf("controllers: %+v", ctl)
	}
	if !CanRun(results) {
		t.Errorf("cgroup v1 must not stop regente: %+v", results)
	}

	// A controller the kernel has switched off is a failure.
	files["proc/cgroups"] = s(strings.Replace(*files["proc/cgroups"], "memory\t4\t16\t1", "memory\t4\t16\t0", 1))
	ctl = find(t, check(t, files), "cgroup controllers")
	if ctl.Status != Fail || !strings.Contains(ctl.Fix, "cgroup_enable=memory") {
		t.Errorf("memory disabled: %+v", ctl)
	}
}

func TestCgroupV2MissingController(t *testing.T) {
	files := healthyHost(allConfig)
	files["sys/fs/cgroup/cgroup.controllers"] = s("cpuset cpu io pids\n")
	ctl := find(t, check(t, files), "cgroup controllers")
	if ctl.Status != Fail || !strings.Contains(ctl.Detail, "memory") || !strings.Contains(ctl.Fix, "cgroup_enable=memory") {
		t.Errorf("%+v", ctl)
	}
}

func TestModuleState(t *testing.T) {
	root := fakeRoot(t, map[string]*string{
		"proc/sys/kernel/osrelease":               s("6.8.0\n"),
		"proc/modules":                            s("vxlan 155648 0 - Live 0x0\n"),
		"sys/module/bridge":                       nil,
		"lib/modules/6.8.0/modules.builtin":       s("kernel/drivers/net/veth.ko\n"),
		"lib/modules/6.8.0/modules.dep":           s("kernel/net/netfilter/xt_comment.ko.zst:\nkernel/net/bridge/br-netfilter.ko.zst: kernel/net/bridge/bridge.ko.zst\n"),
		"proc/sys/net/netfilter/nf_conntrack_max": s("262144\n"),
	})
	k := readKernel(root)
	h := host{Options{Root: root}}
	for name, want := range map[string]moduleState{
		"vxlan": present, "bridge": present, "veth": present, "nf_conntrack": present,
		"xt_comment": loadable, "br_netfilter": loadable, "xt_statistic": absent,
	} {
		var m module
		for _, nm := range nodeModules {
			if nm.name == name {
				m = nm
			}
		}
		if got := h.moduleState(k, m); got != want {
			t.Errorf("%s: got %d, want %d", name, got, want)
		}
	}
	// With no module lists and no kernel config, nothing can be said.
	bare := fakeRoot(t, map[string]*string{"proc/sys/kernel/osrelease": s("6.8.0\n")})
	if got := (host{Options{Root: bare}}).moduleState(readKernel(bare), nodeModules[0]); got != unknown {
		t.Errorf("bare root: got %d, want unknown", got)
	}
}

func TestPorts(t *testing.T) {
	inUse := func(string, string) error {
		return &os.SyscallError{Syscall: "bind", Err: syscall.EADDRINUSE}
	}
	ports := []Port{
		{Network: "tcp", Addr: "0.0.0.0:6443", Owner: "kube-apiserver", Fix: "pass --https-listen-port"},
		{Network: "udp", Addr: "0.0.0.0:8472", Owner: "flannel"},
	}
	results := Run(Options{Root: t.TempDir(), DataDir: t.TempDir(), Ports: ports, Listen: inUse})
	api := find(t, results, "port 6443/tcp")
	if api.Status != Fail || !strings.Contains(api.Fix, "ss -lnpt 'sport = :6443'") || !strings.Contains(api.Fix, "--https-listen-port") {
		t.Errorf("%+v", api)
	}

	// A regente running on the data dir holds its lock and its ports;
	// an earlier flannel.1 holds the VXLAN port.
	lock := filepath.Join(t.TempDir(), "regente.lock")
	f, err := os.Create(lock)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	results = Run(Options{Root: t.TempDir(), DataDir: t.TempDir(), Ports: ports[:1], Listen: inUse, LockFiles: []string{lock}})
	if r := find(t, results, "port 6443/tcp"); r.Status != OK || !strings.Contains(r.Detail, "regente running here") {
		t.Errorf("%+v", r)
	}
	root := fakeRoot(t, map[string]*string{"sys/class/net/flannel.1": nil})
	results = Run(Options{Root: root, DataDir: t.TempDir(), Ports: ports[1:], Listen: inUse})
	if r := find(t, results, "port 8472/udp"); r.Status != OK {
		t.Errorf("%+v", r)
	}
}

func TestRootAndPrint(t *testing.T) {
	results := Run(Options{Root: t.TempDir(), DataDir: t.TempDir(), Euid: 1000})
	if r := find(t, results, "root"); r.Status != Fail {
		t.Errorf("%+v", r)
	}
	if find(t, results, "disk").Status == Fail && find(t, results, "disk").Fix == "" {
		t.Error("disk failure without a fix")
	}
	var out bytes.Buffer
	Print(&out, results)
	for _, want := range []string{"FAIL  root", "      fix: sudo regente check-config", "regente cannot run on this host: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
