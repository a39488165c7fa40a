package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"regente.io/regente/pkg/killall"
	"regente.io/regente/tests/nscluster"
)

// network is the cluster's: a bridge and one netns per node, apart from
// the tests' networks so a test run and a conformance run can coexist.
var network = nscluster.Network{Bridge: "rgcf0", Subnet: "10.98.0", Names: []string{"srv", "a1"}}

// registryPort is where the harness serves the test images on the
// bridge's address.
const registryPort = "5000"

type cluster struct {
	server, agent *nscluster.Node
	kubeconfig    string
	work          string
	cleanups      []func()
	httpServer    *http.Server
}

// startCluster serves the images, starts the server and the agent with
// the images in their images dirs and the registry as their mirror, and
// waits until both nodes are Ready and CoreDNS serves.
func startCluster(ctx context.Context, o runOptions, archive string, specs []spec) (*cluster, error) {
	c := &cluster{work: o.work, kubeconfig: filepath.Join(o.work, "kubeconfig")}
	if err := network.Setup(); err != nil {
		return nil, err
	}
	c.cleanups = append(c.cleanups, network.Teardown)
	if err := c.serveImages(specs); err != nil {
		c.teardown()
		return nil, err
	}
	registries := filepath.Join(o.work, "registries.yaml")
	mirror := "http://" + network.Subnet + ".254:" + registryPort
	if err := os.WriteFile(registries, []byte(fmt.Sprintf("mirrors:\n  %s:\n    endpoint:\n      - %s\n", Registry, mirror)), 0o600); err != nil {
		c.teardown()
		return nil, err
	}
	root := filepath.Join(o.work, "nodes")
	if err := os.RemoveAll(root); err != nil {
		c.teardown()
		return nil, err
	}
	var nodes []*nscluster.Node
	for i, n := range network.Names {
		node := &nscluster.Node{Name: n, IP: network.IP(i), Dir: filepath.Join(root, n)}
		node.DataDir = filepath.Join(node.Dir, "data")
		node.RunDir = filepath.Join(node.Dir, "run")
		if i == 0 {
			node.RunDir = "/run/regente" // private to the node's mount namespace
		} else {
			cg, remove, err := nscluster.CgroupRoot("rgcf-" + n)
			if err != nil {
				c.teardown()
				return nil, err
			}
			c.cleanups = append(c.cleanups, remove)
			node.Cgroup = cg
		}
		images := filepath.Join(node.DataDir, "agent", "images")
		if err := os.MkdirAll(images, 0o700); err != nil {
			c.teardown()
			return nil, err
		}
		if err := os.Link(archive, filepath.Join(images, "conformance-images.tar")); err != nil {
			c.teardown()
			return nil, err
		}
		nodes = append(nodes, node)
	}
	c.server, c.agent = nodes[0], nodes[1]
	c.cleanups = append(c.cleanups, func() {
		for _, n := range []*nscluster.Node{c.agent, c.server} {
			if err := n.Stop(60 * time.Second); err != nil {
				fmt.Fprintln(os.Stderr, "harness:", err)
			}
			os.WriteFile(filepath.Join(o.results, "node-"+n.Name+".log"), []byte(n.Log.String()), 0o644)
		}
		for _, n := range nodes {
			killall.Node(n.DataDir, n.RunDir)
		}
	})

	adminKubeconfig := filepath.Join(c.server.Dir, "admin.yaml")
	c.server.Args = []string{o.bin, "server", "--config", "", "--data-dir", c.server.DataDir,
		"--node-name", "srv", "--node-ip", c.server.IP, "--write-kubeconfig", adminKubeconfig,
		"--private-registry", registries, "--disable", "metrics-server,servicelb,local-storage", nscluster.KubeletEvictionArg}
	if err := c.server.Start(); err != nil {
		c.teardown()
		return nil, err
	}
	token := filepath.Join(c.server.DataDir, "server", "token")
	if err := waitFor(ctx, 2*time.Minute, "the server's kubeconfig and token", func() error {
		if !c.server.Running() {
			return errExited(c.server)
		}
		b, err := os.ReadFile(adminKubeconfig)
		if err != nil {
			return err
		}
		if _, err := os.Stat(token); err != nil {
			return err
		}
		return os.WriteFile(c.kubeconfig, []byte(strings.ReplaceAll(string(b), "https://127.0.0.1:6443", "https://"+c.server.IP+":6443")), 0o600)
	}); err != nil {
		c.teardown()
		return nil, err
	}
	c.agent.Args = []string{o.bin, "agent", "--config", "", "--data-dir", c.agent.DataDir, "--run-dir", c.agent.RunDir,
		"--node-name", c.agent.Name, "--node-ip", c.agent.IP, "--server", "https://" + c.server.IP + ":6443",
		"--token-file", token, "--private-registry", registries, "--kubelet-arg=cgroup-root=" + c.agent.Cgroup, nscluster.KubeletEvictionArg}
	if err := c.agent.Start(); err != nil {
		c.teardown()
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "harness: waiting for both nodes Ready and CoreDNS")
	if err := waitFor(ctx, 5*time.Minute, "two Ready nodes and CoreDNS", func() error {
		for _, n := range nodes {
			if !n.Running() {
				return errExited(n)
			}
		}
		out, err := c.kubectl(o, "get", "nodes", "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status} {end}`)
		if err != nil || strings.Count(out, "True") != 2 {
			return fmt.Errorf("nodes Ready: %q %v", out, err)
		}
		_, err = c.kubectl(o, "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=5s")
		return err
	}); err != nil {
		c.teardown()
		return nil, err
	}
	return c, nil
}

// serveImages pushes every image to a registry served on the bridge.
func (c *cluster) serveImages(specs []spec) error {
	addr := net.JoinHostPort(network.Subnet+".254", registryPort)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve the test images on %s: %w", addr, err)
	}
	c.httpServer = &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go c.httpServer.Serve(l)
	c.cleanups = append(c.cleanups, func() { c.httpServer.Close() })
	begin := time.Now()
	for _, s := range specs {
		img, err := s.image()
		if err != nil {
			return err
		}
		for _, r := range s.refs {
			ref, err := name.ParseReference(addr+"/"+r, name.Insecure)
			if err != nil {
				return err
			}
			if err := remote.Write(ref, img); err != nil {
				return fmt.Errorf("push %s: %w", ref, err)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "harness: images served at %s (pushed in %s)\n", addr, time.Since(begin).Round(time.Second))
	return nil
}

func (c *cluster) teardown() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
	c.cleanups = nil
}

func (c *cluster) kubectl(o runOptions, args ...string) (string, error) {
	out, err := exec.Command(o.kubectl, append([]string{"--kubeconfig", c.kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

func errExited(n *nscluster.Node) error {
	log := n.Log.String()
	if len(log) > 4000 {
		log = log[len(log)-4000:]
	}
	return fmt.Errorf("%s exited:\n%s", n.Name, log)
}

// waitFor retries check until it succeeds or timeout; an exited node
// ends the wait at once.
func waitFor(ctx context.Context, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if last = check(); last == nil {
			return nil
		}
		if strings.Contains(last.Error(), " exited:\n") {
			return last
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	return fmt.Errorf("%s: not after %s: %w", what, timeout, last)
}

// suiteRun is one ginkgo run of the suite.
type suiteRun struct {
	name   string
	labels string   // ginkgo label filter
	focus  []string // spec names, exactly; none means every spec the labels select
	procs  int
}

// runSuite runs e2e.test under ginkgo and returns its specs' results.
func (c *cluster) runSuite(ctx context.Context, o runOptions, r suiteRun, skips []skip, repoFile string) ([]result, error) {
	// ginkgo puts its reports in --output-dir, by name.
	report := "junit-" + r.name + ".xml"
	args := []string{"--procs", fmt.Sprint(r.procs), "--label-filter", r.labels, "--timeout", o.timeout.String(),
		"--no-color", "--junit-report", report, "--output-dir", o.results, "--silence-skips"}
	for _, f := range r.focus {
		// The full text ginkgo matches has the suite's own text before
		// the spec's name, so only the end is anchored.
		args = append(args, "--focus", regexp.QuoteMeta(f)+"$")
	}
	for _, s := range skips {
		args = append(args, "--skip", regexp.QuoteMeta(s.spec))
	}
	args = append(args, o.e2e, "--",
		"--provider=skeleton", "--kubeconfig="+c.kubeconfig, "--kubectl-path="+o.kubectl,
		"--report-dir="+filepath.Join(o.results, r.name), "--disable-log-dump")
	cmd := exec.CommandContext(ctx, o.ginkgo, args...)
	cmd.Env = append(os.Environ(), "KUBE_TEST_REPO_LIST="+repoFile)
	logFile, err := os.Create(filepath.Join(o.results, "e2e-"+r.name+".log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(logFile, os.Stdout), io.MultiWriter(logFile, os.Stderr)
	fmt.Fprintf(os.Stderr, "harness: %s %s\n", o.ginkgo, strings.Join(args, " "))
	runErr := cmd.Run()
	res, err := readJUnit(filepath.Join(o.results, report))
	if err != nil {
		// No report: the suite did not run at all.
		return nil, errors.Join(fmt.Errorf("ginkgo: %v", runErr), err)
	}
	return res, nil
}
