package checkconfig

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Status is the verdict of one check.
type Status int

const (
	OK   Status = iota // nothing to do
	Warn               // regente runs, but worse or with a caveat
	Fail               // regente cannot run until it is fixed
)

func (s Status) String() string { return [...]string{"OK", "WARN", "FAIL"}[s] }

// MarshalText makes JSON output read "OK", "WARN", "FAIL".
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Result is one finding. Fix is set for every Warn and Fail.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Tool is a program regente runs on the host.
type Tool struct {
	Program  string
	Package  string // the Debian/Ubuntu package that has it
	Optional bool   // missing means a Warn, not a Fail
	Why      string // who runs it
}

// Port is one address a regente process listens on.
type Port struct {
	Network string // "tcp" or "udp"
	Addr    string // host:port as the component binds it
	Owner   string // the component, e.g. "kube-apiserver"
	Fix     string // how to move it, when regente has a flag for that
}

// Options say which host to check and for which role.
type Options struct {
	Root      string // prefix of /proc, /sys, /lib/modules, /boot; "/" on a real host
	DataDir   string // --data-dir of the server or agent
	Node      bool   // check what a node needs (kubelet, containerd, pod network)
	Tools     []Tool
	Ports     []Port
	LockFiles []string // held while a regente runs on DataDir
	Euid      int

	// LookPath and Listen default to exec.LookPath and a listen-and-close.
	LookPath func(string) (string, error)
	Listen   func(network, addr string) error
}

// Run runs every check that applies to opts and returns the findings in
// the order they are printed.
func Run(opts Options) []Result {
	if opts.Root == "" {
		opts.Root = "/"
	}
	if opts.LookPath == nil {
		opts.LookPath = exec.LookPath
	}
	if opts.Listen == nil {
		opts.Listen = listen
	}
	h := host{opts}
	results := []Result{h.root(), h.kernelVersion()}
	if opts.Node {
		k := readKernel(opts.Root)
		results = append(results, h.cgroups()...)
		results = append(results, h.modules(k)...)
		results = append(results, h.overlay(k))
		results = append(results, h.tools()...)
		results = append(results, h.swap(), h.ipForward(), h.apparmor(), h.selinux())
	}
	results = append(results, h.ports()...)
	return append(results, h.disk()...)
}

// CanRun reports whether regente can run with these findings: none failed.
func CanRun(results []Result) bool {
	return !slices.ContainsFunc(results, func(r Result) bool { return r.Status == Fail })
}

// Print writes one line per finding, its fix on the next line, and a
// summary.
func Print(w io.Writer, results []Result) {
	warns, fails := PrintFindings(w, results)
	if fails > 0 {
		fmt.Fprintf(w, "\nregente cannot run on this host: %d failed, %d warnings\n", fails, warns)
		return
	}
	fmt.Fprintf(w, "\nregente can run on this host: %d warnings\n", warns)
}

// PrintFindings writes one line per finding and its fix on the next
// line, and counts the warnings and failures.
func PrintFindings(w io.Writer, results []Result) (warns, fails int) {
	for _, r := range results {
		fmt.Fprintf(w, "%-4s  %-20s %s\n", r.Status, r.Name, r.Detail)
		if r.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", r.Fix)
		}
		switch r.Status {
		case Warn:
			warns++
		case Fail:
			fails++
		}
	}
	return warns, fails
}

// WriteJSON writes the findings and the verdict as one JSON object.
func WriteJSON(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		CanRun bool     `json:"canRun"`
		Checks []Result `json:"checks"`
	}{CanRun(results), results})
}

// host holds the options the checks read.
type host struct{ Options }

// path is p under the root being checked.
func (h host) path(p string) string { return filepath.Join(h.Root, p) }

// read returns the trimmed content of p under the root, "" when unreadable.
func (h host) read(p string) string {
	b, err := os.ReadFile(h.path(p))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (h host) exists(p string) bool {
	_, err := os.Stat(h.path(p))
	return err == nil
}

func listen(network, addr string) error {
	if network == "udp" {
		c, err := net.ListenPacket(network, addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	return l.Close()
}
