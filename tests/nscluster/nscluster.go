// Package nscluster runs regente nodes on one machine, each in its own
// network namespace (joined by veth to a bridge), UTS namespace (its name
// as host name), mount namespace (a fresh /sys and private pod log dirs),
// data dir, run dir and kubelet cgroup root. The multi-node tests and the bench share it. Traffic stays on the
// bridge's subnet.
package nscluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// KubeletEvictionArg gives a test node's kubelet absolute disk thresholds.
// The default (5% free, as in k3s) is a share of the whole filesystem:
// the test machines' disk is large, shared and often mostly used, and with
// 5% of 252 GiB (12.6 GiB) not free, the kubelet sets DiskPressure,
// rejects new pods (phase Failed) and taints the node, so that a whole CI
// run failed on a disk with 10 GiB still free. A node needs far less than
// that to run the tests; memory.available repeats the kubelet's default,
// which the flag would otherwise drop.
const KubeletEvictionArg = "--kubelet-arg=eviction-hard=memory.available<100Mi,nodefs.available<1Gi,imagefs.available<1Gi"

// Network is the bridge and the nodes' namespaces.
type Network struct {
	Bridge string // e.g. rgmn0
	Subnet string // the first three octets, e.g. 10.99.0; the bridge is .254
	Names  []string
}

// Namespace is the netns of a node.
func Namespace(name string) string { return "rg-" + name }

// IP is the address of the i-th node (from 0).
func (n Network) IP(i int) string { return fmt.Sprintf("%s.%d", n.Subnet, i+1) }

// Setup creates the bridge and one netns per name, removing leftovers of
// an earlier run first. Teardown removes them.
func (n Network) Setup() error {
	n.Teardown()
	cmds := [][]string{
		{"ip", "link", "add", n.Bridge, "type", "bridge"},
		{"ip", "addr", "add", n.Subnet + ".254/24", "dev", n.Bridge},
		{"ip", "link", "set", n.Bridge, "up"},
	}
	for i, name := range n.Names {
		ns := Namespace(name)
		cmds = append(cmds,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", "v-" + name, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"ip", "link", "set", "v-" + name, "master", n.Bridge, "up"},
			[]string{"ip", "-n", ns, "addr", "add", n.IP(i) + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", ns, "route", "add", "default", "via", n.Subnet + ".254"},
		)
	}
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	return nil
}

// Teardown removes the namespaces and the bridge.
func (n Network) Teardown() {
	for _, name := range n.Names {
		exec.Command("ip", "netns", "delete", Namespace(name)).Run()
		exec.Command("ip", "link", "delete", "v-"+name).Run()
	}
	exec.Command("ip", "link", "delete", n.Bridge).Run()
}

// CgroupRoot creates a kubelet cgroup root named name in every hierarchy
// (the cgroup v1 controllers, or the v2 unified tree); remove deletes it
// with what the kubelet made below it, once its processes are gone.
func CgroupRoot(name string) (root string, remove func(), err error) {
	var dirs []string
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		dirs = []string{filepath.Join("/sys/fs/cgroup", name)}
	} else {
		hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, h := range hierarchies {
			if fi, err := os.Lstat(h); err == nil && fi.IsDir() {
				dirs = append(dirs, filepath.Join(h, name))
			}
		}
	}
	remove = func() {
		for _, d := range dirs {
			removeTree(d)
		}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			remove()
			return "", nil, fmt.Errorf("create cgroup %s: %w", d, err)
		}
	}
	return "/" + name, remove, nil
}

func removeTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()))
		}
	}
	os.Remove(dir)
}

// script runs in a node's own UTS namespace, with the node name as host
// name (the API servers name their identity leases after it, so two
// servers must not share one), and its own mount namespace: a fresh /sys (the netns's
// devices) with the host's cgroups under it, and private pod log dirs,
// since every kubelet writes /var/log/pods, and a private /run/regente,
// the run dir of a server's node (servers have no --run-dir).
const script = `set -e
hostname "$NODE_NAME"
mkdir -p "$NODE_DIR/cg"
mount --rbind /sys/fs/cgroup "$NODE_DIR/cg"
mount -t sysfs sysfs /sys
mount --rbind "$NODE_DIR/cg" /sys/fs/cgroup
umount -l "$NODE_DIR/cg"
mkdir -p /var/log/pods /var/log/containers
mount -t tmpfs tmpfs /var/log/pods
mount -t tmpfs tmpfs /var/log/containers
mkdir -p /run/regente
mount -t tmpfs tmpfs /run/regente
exec "$@"`

// Node is one regente process in its namespaces.
type Node struct {
	Name    string
	IP      string
	Dir     string   // the node's scratch dir; holds DataDir
	DataDir string   // --data-dir
	RunDir  string   // --run-dir, or /run/regente for a server's node
	Cgroup  string   // the kubelet's cgroup root (agents)
	Args    []string // the regente command line, binary first
	Wrap    []string // an argv prefix Args runs under, inside the namespaces
	Log     *Buffer
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Start launches the node's process.
func (n *Node) Start() error {
	n.Log = &Buffer{}
	args := append([]string{"--net=/run/netns/" + Namespace(n.Name), "unshare", "-m", "-u", "--propagation", "slave", "sh", "-c", script, "sh"}, n.Wrap...)
	args = append(args, n.Args...)
	n.cmd = exec.Command("nsenter", args...)
	n.cmd.Env = append(os.Environ(), "NODE_DIR="+n.Dir, "NODE_NAME="+n.Name)
	n.cmd.Stdout, n.cmd.Stderr = n.Log, n.Log
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	n.exited = make(chan struct{})
	go func() { n.cmd.Wait(); close(n.exited) }()
	return nil
}

// Pid is the process's id: regente's own, as nsenter, unshare and the
// setup script each exec the next.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// Exited is closed when the process has ended.
func (n *Node) Exited() <-chan struct{} { return n.exited }

// Running reports whether the process was started and has not ended.
func (n *Node) Running() bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL, as a crash or power loss would end the process, and
// waits for it to end.
func (n *Node) Kill() {
	if !n.Running() {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// Stop sends SIGTERM and waits up to timeout, then kills.
func (n *Node) Stop(timeout time.Duration) error {
	if !n.Running() {
		return nil
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return nil
	case <-time.After(timeout):
		_ = n.cmd.Process.Kill()
		<-n.exited
		return errors.New(n.Name + " did not stop within " + timeout.String() + " of SIGTERM")
	}
}

// Buffer is an io.Writer safe for concurrent use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
