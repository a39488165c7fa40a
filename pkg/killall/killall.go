package killall

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"regente.io/regente/pkg/netpol"
)

// Bridge is the pod bridge the network component creates.
const Bridge = "regente0"

// flannelVXLAN is the device flannel's vxlan backend creates (VNI 1).
const flannelVXLAN = "flannel.1"

// Node stops every pod process and shim of the node whose data dir is
// dataDir and run dir is runDir, deletes the pod network namespaces and
// the bridge and flannel's device, removes the iptables and nftables rules
// of the CNI plugins, kube-proxy, flannel and network policy, and unmounts
// everything below runDir and dataDir. It is best effort: it goes on past
// what is already gone.
func Node(dataDir, runDir string) {
	killMatching(func(pid int) bool {
		cgroup, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		return strings.Contains(string(cgroup), "kubepods") || strings.Contains(string(cmdline), filepath.Join(dataDir, "data"))
	})
	// containerd bind-mounts each pod's network namespace; a stale one
	// keeps answering on an IP a fresh node may hand out again.
	netns, _ := filepath.Glob("/run/netns/cni-*")
	for _, ns := range netns {
		_ = exec.Command("ip", "netns", "delete", filepath.Base(ns)).Run()
	}
	for _, link := range []string{Bridge, flannelVXLAN} {
		_ = exec.Command("ip", "link", "delete", link).Run() // absent is fine
	}
	for _, dir := range []string{runDir, dataDir} {
		for _, m := range mountsUnder(dir) {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	removeRules()
	os.RemoveAll(filepath.Join(runDir, "containerd"))
}

// removeRules drops every iptables rule and chain of the CNI plugins
// (CNI-: a killed pod never had its hostPort DNAT removed, and it would
// catch the port for a later pod), kube-proxy (KUBE-) and flannel; each
// recreates its own at the next start. The network policy table and its
// iptables fallback (REGENTE-) go too.
func removeRules() {
	for _, tool := range []string{"iptables", "ip6tables"} {
		saved, err := exec.Command(tool + "-save").Output()
		if err != nil {
			continue
		}
		var kept strings.Builder
		for line := range strings.Lines(string(saved)) {
			if strings.Contains(line, "CNI-") || strings.Contains(line, "KUBE-") || strings.Contains(line, "REGENTE-") || strings.Contains(strings.ToUpper(line), "FLANNEL") {
				continue
			}
			kept.WriteString(line)
		}
		restore := exec.Command(tool + "-restore")
		restore.Stdin = strings.NewReader(kept.String())
		_ = restore.Run() // best effort, like the rest of killall: each component recreates its rules
	}
	// In nftables mode kube-proxy and flannel keep their rules in tables
	// of their own, which iptables-save does not show.
	for _, table := range [][]string{{"inet", netpol.TableName}, {"ip", "kube-proxy"}, {"ip6", "kube-proxy"}, {"ip", "flannel-ipv4"}, {"ip6", "flannel-ipv6"}} {
		_ = exec.Command("nft", "delete", "table", table[0], table[1]).Run() // absent is fine
	}
}

func killMatching(match func(pid int) bool) {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || !match(pid) {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL) // it may have exited already
	}
}

// mountsUnder lists the mount points below dir (not dir itself), deepest
// first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// Only mounts below dir: a data dir that is a disk of its own stays
		// mounted, or the next start would find an empty dir and make a
		// new cluster there.
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts
}
