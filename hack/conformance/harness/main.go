// Command harness runs the upstream Kubernetes conformance specs against a
// regente cluster of one server and one agent, each in its own network
// namespace on this machine, with no registry: the test images are built
// here (images.go), loaded through the nodes' images dir, and served to
// the specs that force a pull by a registry in this process, which the
// nodes mirror through their registries.yaml, as a user's mirror would be.
//
// hack/conformance.sh builds its inputs and runs it; `make conformance`
// and `make conformance-smoke` call that.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	var in Inputs
	var opts runOptions
	flag.StringVar(&opts.bin, "bin", "bin/regente", "regente binary")
	flag.StringVar(&opts.e2e, "e2e", "bin/conformance/e2e.test", "the upstream e2e suite (go test -c k8s.io/kubernetes/test/e2e)")
	flag.StringVar(&opts.ginkgo, "ginkgo", "bin/conformance/ginkgo", "the ginkgo CLI at the version e2e.test links")
	flag.StringVar(&opts.kubectl, "kubectl", "bin/kubectl", "kubectl for the kubectl specs (regente's)")
	flag.StringVar(&opts.work, "work", "bin/conformance/work", "scratch dir for the nodes and the image archive")
	flag.StringVar(&opts.results, "results", "hack/conformance/results", "where the reports and the summary go")
	flag.StringVar(&opts.skips, "skips", "hack/conformance/SKIPS.md", "specs skipped, with reasons")
	flag.StringVar(&opts.smoke, "smoke", "", "file of spec names: run only these (CI's smoke subset)")
	flag.IntVar(&opts.procs, "procs", 4, "parallel ginkgo processes for the default set")
	flag.BoolVar(&opts.serial, "serial", true, "also run the [Serial] conformance specs, one at a time, after the default set")
	flag.DurationVar(&opts.timeout, "timeout", 6*time.Hour, "the suite's timeout per run")
	flag.StringVar(&in.Rootfs, "rootfs", "bin/conformance/rootfs", "Debian rootfs for the images that need a userland")
	flag.StringVar(&in.Busybox, "busybox", "bin/conformance/busybox", "busybox, built from its release tarball")
	flag.StringVar(&in.Agnhost, "agnhost", "bin/conformance/agnhost", "agnhost")
	flag.StringVar(&in.Nnp, "nnp", "bin/conformance/nnp", "nonewprivs' nnp")
	flag.StringVar(&in.SampleAPIServer, "sample-apiserver", "bin/conformance/sample-apiserver", "the sample API server")
	flag.StringVar(&in.Etcd, "etcd", "bin/conformance/etcd", "etcd")
	flag.StringVar(&in.Pause, "pause", "bin/conformance/pause", "regente's pause")
	flag.StringVar(&in.ImagesSrc, "images-src", "", "k8s.io/kubernetes/test/images of the pinned module")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	begin := time.Now()
	code, err := run(ctx, in, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		code = 2
	}
	fmt.Printf("conformance: finished in %s\n", time.Since(begin).Round(time.Second))
	os.Exit(code)
}

type runOptions struct {
	bin, e2e, ginkgo, kubectl, work, results, skips, smoke string
	procs                                                  int
	serial                                                 bool
	timeout                                                time.Duration
}

func run(ctx context.Context, in Inputs, o runOptions) (int, error) {
	for _, p := range []*string{&o.bin, &o.e2e, &o.ginkgo, &o.kubectl, &o.work, &o.results, &o.skips, &o.smoke} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return 0, err
			}
			*p = abs
		}
	}
	skips, err := readSkips(o.skips)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(o.work, 0o700); err != nil {
		return 0, err
	}
	if err := os.RemoveAll(o.results); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(o.results, 0o755); err != nil {
		return 0, err
	}

	specs, err := buildImages(in, o.work)
	if err != nil {
		return 0, fmt.Errorf("build the test images: %w", err)
	}
	archive := filepath.Join(o.work, "conformance-images.tar")
	if err := writeArchive(specs, archive); err != nil {
		return 0, err
	}
	if err := writeImageNotes(specs, filepath.Join(o.results, "IMAGES.md")); err != nil {
		return 0, err
	}
	repoFile := filepath.Join(o.work, "repo-list.yaml")
	if err := writeRepoList(repoFile); err != nil {
		return 0, err
	}

	c, err := startCluster(ctx, o, archive, specs)
	if err != nil {
		return 0, err
	}
	defer c.teardown()

	var runs []suiteRun
	base := "Conformance && !Disruptive"
	if o.smoke != "" {
		names, err := readLines(o.smoke)
		if err != nil {
			return 0, err
		}
		runs = append(runs, suiteRun{name: "smoke", labels: base, focus: names, procs: o.procs})
	} else {
		runs = append(runs, suiteRun{name: "default", labels: "Conformance && !Serial && !Disruptive", procs: o.procs})
		if o.serial {
			runs = append(runs, suiteRun{name: "serial", labels: "Conformance && Serial", procs: 1})
		}
	}
	var all []result
	for _, r := range runs {
		begin := time.Now()
		res, err := c.runSuite(ctx, o, r, skips, repoFile)
		if err != nil {
			return 0, fmt.Errorf("%s run: %w", r.name, err)
		}
		fmt.Printf("conformance %s set: %s in %s\n", r.name, counts(res), time.Since(begin).Round(time.Second))
		all = append(all, res...)
	}
	if o.smoke == "" {
		for _, s := range skips {
			all = append(all, result{name: s.spec, status: "skipped", message: "SKIPS.md: " + s.reason})
		}
	}
	if err := writeSummary(all, skips, filepath.Join(o.results, "summary.md")); err != nil {
		return 0, err
	}
	printFailures(all)
	fmt.Printf("conformance: %s\n", counts(all))
	if failed(all) > 0 {
		return 1, nil
	}
	return 0, nil
}

func goarch() string { return runtime.GOARCH }

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}

func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, nil
}

func writeRepoList(path string) error {
	var b strings.Builder
	b.WriteString("# The e2e framework's registries, all pointed at the made-up host the nodes mirror.\n")
	for _, k := range sortedKeys(repoList) {
		fmt.Fprintf(&b, "%s: %s\n", k, repoList[k])
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func writeImageNotes(specs []spec, path string) error {
	var b strings.Builder
	b.WriteString("# Test images of this run\n\nBuilt by hack/conformance/harness from pinned modules and Debian packages; nothing was pulled.\n\n| image | content |\n| --- | --- |\n")
	for _, s := range specs {
		for _, r := range s.refs {
			fmt.Fprintf(&b, "| %s/%s | %s |\n", Registry, r, s.note)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
