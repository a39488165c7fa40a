package checkconfig

import (
	"fmt"
	"slices"
	"strings"
)

// cgroupV2Fix moves a host to the unified hierarchy.
const cgroupV2Fix = "add systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all to the kernel command line " +
	"(GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot"

// Controllers the kubelet and runc need; hugetlb only limits huge pages.
var (
	cgroupV1Required = []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "devices"}
	cgroupV2Required = []string{"cpu", "cpuset", "memory", "pids"}
	cgroupOptional   = []string{"hugetlb"}
)

type mount struct{ point, fstype, options string }

func (h host) mounts() []mount {
	var ms []mount
	for _, line := range strings.Split(h.read("proc/self/mounts"), "\n") {
		if f := strings.Fields(line); len(f) >= 4 {
			ms = append(ms, mount{f[1], f[2], f[3]})
		}
	}
	return ms
}

// cgroups reports the cgroup version and whether the controllers the
// kubelet needs are there.
func (h host) cgroups() []Result {
	var v1, v2, unified bool
	mounted := map[string]bool{} // v1 controllers with a hierarchy
	for _, m := range h.mounts() {
		switch {
		case m.fstype == "cgroup2" && m.point == "/sys/fs/cgroup":
			v2 = true
		case m.fstype == "cgroup2" && m.point == "/sys/fs/cgroup/unified":
			unified = true
		case m.fstype == "cgroup":
			v1 = true
			for _, o := range strings.Split(m.options, ",") {
				mounted[o] = true
			}
		}
	}
	switch {
	case v2:
		available := strings.Fields(h.read("sys/fs/cgroup/cgroup.controllers"))
		return []Result{
			{Name: "cgroups", Status: OK, Detail: "cgroup v2 (unified)"},
			h.controllers(cgroupV2Required, func(c string) string {
				if slices.Contains(available, c) {
					return ""
				}
				return "not in /sys/fs/cgroup/cgroup.controllers"
			}),
		}
	case v1:
		mode := "legacy"
		if unified {
			mode = "hybrid, v2 at /sys/fs/cgroup/unified holds no controllers the kubelet uses"
		}
		enabled := map[string]bool{}
		for _, line := range strings.Split(h.read("proc/cgroups"), "\n") {
			if f := strings.Fields(line); len(f) == 4 && f[3] == "1" {
				enabled[f[0]] = true
			}
		}
		return []Result{
			{"cgroups", Warn, fmt.Sprintf("cgroup v1 (%s): it works, but Kubernetes has deprecated it; "+
				"regente runs the kubelet with failCgroupV1: false so that it still starts", mode), cgroupV2Fix},
			h.controllers(cgroupV1Required, func(c string) string {
				switch {
				case !enabled[c]:
					return "disabled in /proc/cgroups"
				case !mounted[c]:
					return "not mounted"
				}
				return ""
			}),
		}
	}
	return []Result{{"cgroups", Fail, "no cgroup filesystem is mounted at /sys/fs/cgroup",
		"mount -t cgroup2 cgroup2 /sys/fs/cgroup (and boot with systemd, which mounts it for you)"}}
}

// controllers checks the required and the optional controllers; missing
// says why one is missing, or "" when it is there.
func (h host) controllers(required []string, missing func(string) string) Result {
	var fails, warns []string
	var fixes []string
	for _, c := range append(slices.Clone(required), cgroupOptional...) {
		why := missing(c)
		if why == "" {
			continue
		}
		if slices.Contains(required, c) {
			fails = append(fails, c+" ("+why+")")
		} else {
			warns = append(warns, c+" ("+why+", so huge page limits are not enforced)")
		}
		if why == "not mounted" {
			fixes = append(fixes, fmt.Sprintf("mkdir -p /sys/fs/cgroup/%[1]s && mount -t cgroup -o %[1]s cgroup /sys/fs/cgroup/%[1]s", c))
		} else {
			fixes = append(fixes, fmt.Sprintf("add cgroup_enable=%s to the kernel command line and reboot", c))
		}
	}
	r := Result{Name: "cgroup controllers", Status: OK, Detail: "all the kubelet needs: " + strings.Join(required, " "), Fix: strings.Join(fixes, "; ")}
	switch {
	case len(fails) > 0:
		r.Status, r.Detail = Fail, "missing "+strings.Join(append(fails, warns...), ", ")
	case len(warns) > 0:
		r.Status, r.Detail = Warn, "missing "+strings.Join(warns, ", ")
	}
	return r
}
