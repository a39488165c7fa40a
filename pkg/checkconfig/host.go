package checkconfig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"regente.io/regente/pkg/datadir"
)

// Free space under the data dir. A first start unpacks about 110 MiB of
// binaries and imports the system images (stored twice by containerd,
// as content and unpacked): under minFree it cannot finish. Under lowFree
// it starts, but workload images soon fill the disk and the kubelet's
// evictions begin.
const (
	minFree = 500 << 20
	lowFree = 2 << 30
)

func (h host) root() Result {
	if h.Euid != 0 {
		return Result{"root", Fail, fmt.Sprintf("running as uid %d; regente needs root for cgroups, mounts and networking", h.Euid), "sudo regente check-config"}
	}
	return Result{Name: "root", Status: OK, Detail: "running as root"}
}

// tools reports the host programs as one line when all are there, and one
// line for each that is not.
func (h host) tools() []Result {
	var results []Result
	var found []string
	for _, t := range h.Tools {
		if _, err := h.LookPath(t.Program); err == nil {
			found = append(found, t.Program)
			continue
		}
		status := Fail
		if t.Optional {
			status = Warn
		}
		results = append(results, Result{"tool " + t.Program, status,
			fmt.Sprintf("not found in PATH; %s runs it", t.Why),
			fmt.Sprintf("apt-get install %s (the Debian/Ubuntu package; install the same tool with your distribution's package manager elsewhere)", t.Package)})
	}
	if len(found) > 0 {
		results = append([]Result{{Name: "host tools", Status: OK, Detail: strings.Join(found, " ")}}, results...)
	}
	return results
}

func (h host) swap() Result {
	lines := strings.Split(h.read("proc/swaps"), "\n")[1:] // the first line is a header
	var devices []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 {
			devices = append(devices, f[0])
		}
	}
	if len(devices) == 0 {
		return Result{Name: "swap", Status: OK, Detail: "off"}
	}
	return Result{"swap", Warn, fmt.Sprintf("on (%s): the kubelet tolerates it (regente sets failSwapOn: false), "+
		"but memory limits and evictions are predictable only without swap", strings.Join(devices, ", ")),
		"swapoff -a, and comment out the swap lines in /etc/fstab"}
}

// ipForward is turned on by the agent at start (pkg/network); it fails
// only when it is off and cannot be turned on, e.g. under a read-only
// /proc/sys.
func (h host) ipForward() Result {
	const name, p = "ip_forward", "proc/sys/net/ipv4/ip_forward"
	const fix = "sysctl -w net.ipv4.ip_forward=1, and put net.ipv4.ip_forward=1 in /etc/sysctl.d/99-regente.conf"
	switch v := h.read(p); {
	case v == "1":
		return Result{Name: name, Status: OK, Detail: "on"}
	case v == "":
		return Result{name, Fail, "/" + p + " is missing: this kernel cannot forward IPv4", fix}
	case h.Euid != 0 || unix.Access(h.path(p), unix.W_OK) == nil: // not root: writability cannot be told
		return Result{Name: name, Status: OK, Detail: "off; the agent turns it on at start"}
	}
	return Result{name, Fail, "off, and /" + p + " is read-only here, so the agent cannot turn it on", fix + " (on the host, if this is a container)"}
}

// apparmor matters through containerd: it confines pods with its default
// profile only when it can load it with /sbin/apparmor_parser.
func (h host) apparmor() Result {
	if !strings.HasPrefix(h.read("sys/module/apparmor/parameters/enabled"), "Y") {
		return Result{Name: "apparmor", Status: OK, Detail: "not enabled"}
	}
	if !h.exists("sbin/apparmor_parser") {
		return Result{"apparmor", Warn, "enabled, but /sbin/apparmor_parser is missing: containerd runs pods unconfined, " +
			"and pods that ask for an AppArmor profile fail", "apt-get install apparmor"}
	}
	return Result{Name: "apparmor", Status: OK, Detail: "enabled; containerd confines pods with its default profile"}
}

// selinux: regente ships no SELinux policy, so enforcing mode may deny
// containers what they need.
func (h host) selinux() Result {
	switch h.read("sys/fs/selinux/enforce") {
	case "1":
		return Result{"selinux", Warn, "enforcing; regente ships no SELinux policy, so containers may be denied access to their files",
			"setenforce 0, and SELINUX=permissive in /etc/selinux/config"}
	case "0":
		return Result{Name: "selinux", Status: OK, Detail: "permissive"}
	}
	return Result{Name: "selinux", Status: OK, Detail: "not enabled"}
}

// ports tries to listen on each port regente will use. A port held while
// a regente holds its data dir lock is that regente's own.
func (h host) ports() []Result {
	running := ""
	for _, f := range h.LockFiles {
		if datadir.CheckNotLocked(f) != nil {
			running = f
		}
	}
	var results []Result
	for _, p := range h.Ports {
		_, port, _ := strings.Cut(p.Addr, ":")
		name := fmt.Sprintf("port %s/%s", port, p.Network)
		err := h.Listen(p.Network, p.Addr)
		switch {
		case err == nil:
			results = append(results, Result{Name: name, Status: OK, Detail: "free for " + p.Owner})
		case running != "":
			results = append(results, Result{Name: name, Status: OK, Detail: fmt.Sprintf("in use, by the regente running here (%s is held)", running)})
		case p.Network == "udp" && p.Owner == "flannel" && h.exists("sys/class/net/flannel.1"):
			results = append(results, Result{Name: name, Status: OK, Detail: "held by flannel.1, the VXLAN device of an earlier run, which flannel reuses"})
		default:
			fix := fmt.Sprintf("find the process with ss -lnp%s 'sport = :%s' and stop it", map[string]string{"tcp": "t", "udp": "u"}[p.Network], port)
			if p.Fix != "" {
				fix += ", or " + p.Fix
			}
			results = append(results, Result{name, Fail, fmt.Sprintf("%s cannot listen on %s: %v", p.Owner, p.Addr, unwrapSyscall(err)), fix})
		}
	}
	return results
}

// unwrapSyscall shortens "listen tcp 0.0.0.0:6443: bind: address already
// in use" to its cause.
func unwrapSyscall(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// disk reports the free space and filesystem of the data dir, or of its
// nearest existing parent before the first start.
func (h host) disk() []Result {
	dir := filepath.Clean(h.DataDir)
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return []Result{{"disk", Fail, fmt.Sprintf("cannot inspect data dir %s: %v", h.DataDir, err), "pass an existing, readable --data-dir"}}
	}
	free := st.Bavail * uint64(st.Bsize)
	space := Result{Name: "disk", Status: OK, Detail: fmt.Sprintf("%s free at %s", humanSize(free), dir)}
	fix := fmt.Sprintf("free space on the filesystem of %s (df -h %s), or pass --data-dir on a larger one", dir, dir)
	switch {
	case free < minFree:
		space.Status, space.Detail, space.Fix = Fail, space.Detail+fmt.Sprintf(": a first start needs %s", humanSize(minFree)), fix
	case free < lowFree:
		space.Status, space.Detail, space.Fix = Warn, space.Detail+fmt.Sprintf(": under %s, workload images will soon fill it", humanSize(lowFree)), fix
	}
	fs := Result{Name: "data dir filesystem", Status: OK}
	const fsFix = "pass --data-dir on a disk filesystem (ext4, xfs, btrfs)"
	switch st.Type {
	case unix.OVERLAYFS_SUPER_MAGIC:
		fs.Status, fs.Detail, fs.Fix = Warn, "overlay: containerd's overlayfs snapshotter cannot stack its layers on it", fsFix
	case unix.TMPFS_MAGIC:
		fs.Status, fs.Detail, fs.Fix = Warn, "tmpfs: the cluster's state is lost at reboot", fsFix
	case unix.NFS_SUPER_MAGIC:
		fs.Status, fs.Detail, fs.Fix = Warn, "nfs: overlayfs and SQLite locking do not work reliably on it", fsFix
	default:
		// Type is int32 on 32-bit ARM: a magic above 2^31 (btrfs, f2fs)
		// would turn negative without the uint32.
		fs.Detail = fsName(int64(uint32(st.Type)))
	}
	return []Result{space, fs}
}

func fsName(magic int64) string {
	names := map[int64]string{
		unix.EXT4_SUPER_MAGIC:  "ext4",
		unix.XFS_SUPER_MAGIC:   "xfs",
		unix.BTRFS_SUPER_MAGIC: "btrfs",
		unix.F2FS_SUPER_MAGIC:  "f2fs",
		0x2fc12fc1:             "zfs",
	}
	if n, ok := names[magic]; ok {
		return n
	}
	return fmt.Sprintf("filesystem type %#x", magic)
}

func humanSize(n uint64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
