package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/registries"
)

// Config is what containerd needs from the agent.
type Config struct {
	// AgentDir is <data-dir>/agent: config under etc/containerd, root under containerd.
	AgentDir string
	// StateDir holds the socket and runtime state, e.g. /run/regente/containerd.
	StateDir string
	// BinDir holds runc, the shim and the CNI plugins (the unpacked payload).
	BinDir string
	// CNIConfDir is where the network component writes CNI configs.
	CNIConfDir string
	// SandboxImage is the pause image the kubelet's pods use.
	SandboxImage string
	// RegistriesFile is --private-registry: mirrors, auth and TLS in
	// k3s's registries.yaml format. It may be missing when
	// RegistriesOptional (the default path).
	RegistriesFile     string
	RegistriesOptional bool
}

// Containerd is the runtime component.
type Containerd struct {
	component.Child
	cfg        Config
	registries *registries.Registries // read by Init
}

var (
	_ component.Component = (*Containerd)(nil)
	_ component.Ready     = (*Containerd)(nil)
	_ component.Failer    = (*Containerd)(nil)
)

// New returns the containerd component.
func New(cfg Config) *Containerd { return &Containerd{cfg: cfg} }

// Name implements component.Component.
func (c *Containerd) Name() string { return "containerd" }

// Socket is containerd's gRPC socket (also its CRI endpoint).
func (c *Containerd) Socket() string { return filepath.Join(c.cfg.StateDir, "containerd.sock") }

// Endpoint is the kubelet's --container-runtime-endpoint.
func (c *Containerd) Endpoint() string { return "unix://" + c.Socket() }

var _ component.Initer = (*Containerd)(nil)

// Init reads the registries file, so that a bad one stops the process
// before anything starts; the config is written by Start.
func (c *Containerd) Init(context.Context) error {
	r, err := registries.Load(c.cfg.RegistriesFile, c.cfg.RegistriesOptional)
	if err != nil {
		return err
	}
	c.registries = r
	return nil
}

// HostsDir is containerd's certs.d: one hosts.toml per registry, rendered
// from the registries file.
func (c *Containerd) HostsDir() string {
	return filepath.Join(c.cfg.AgentDir, "etc", "containerd", "certs.d")
}

// Start writes the config and starts containerd.
func (c *Containerd) Start(ctx context.Context) error {
	configPath := filepath.Join(c.cfg.AgentDir, "etc", "containerd", "config.toml")
	if err := os.MkdirAll(filepath.Dir(configPath), 0o700); err != nil {
		return fmt.Errorf("create containerd config dir: %w", err)
	}
	for _, d := range []string{c.cfg.StateDir, c.cfg.CNIConfDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	logger := klog.FromContext(ctx).WithValues("component", "containerd")
	snapshotter := Snapshotter()
	if snapshotter != "overlayfs" {
		logger.Info("overlayfs is not available; containerd uses the slower native snapshotter", "fix", "modprobe overlay")
	}
	restrictOOM := !hasCapability(capSysResource)
	if restrictOOM {
		logger.Info("This host withholds CAP_SYS_RESOURCE: pod oom_score_adj values are kept at or above containerd's own")
	}
	if err := c.writeRegistries(ctx); err != nil {
		return err
	}
	runtimes := FindRuntimes(os.Getenv("PATH"))
	if len(runtimes) > 0 {
		logger.Info("Found container runtimes besides runc; a RuntimeClass with the same handler runs pods with them", "runtimes", RuntimeNames(runtimes))
	}
	data, template, err := renderConfig(filepath.Dir(configPath), TemplateData{
		Root: filepath.Join(c.cfg.AgentDir, "containerd"), State: c.cfg.StateDir, Socket: c.Socket(),
		Snapshotter: snapshotter, SandboxImage: c.cfg.SandboxImage, RestrictOOMScoreAdj: restrictOOM,
		Runc: filepath.Join(c.cfg.BinDir, "runc"), BinDir: c.cfg.BinDir, CNIConfDir: c.cfg.CNIConfDir,
		Runtimes: runtimes, Registries: c.registries.CRIConfig(c.HostsDir()),
	})
	if err != nil {
		return err
	}
	if template != "" {
		logger.Info("containerd's config is rendered from the user's template", "template", template, "config", configPath)
	}
	if err := atomicfile.Write(atomicfile.File{Path: configPath, Data: data, Mode: 0o600}); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(c.cfg.BinDir, "containerd"), "--config", configPath)
	// containerd finds containerd-shim-runc-v2 on its PATH; the shim then
	// runs the runc named in the config.
	cmd.Env = append(os.Environ(), "PATH="+c.cfg.BinDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return c.StartChild(ctx, "containerd", cmd)
}

// writeRegistries renders the registries file into HostsDir. It runs even
// without a file, so that registries dropped from it stop being used.
func (c *Containerd) writeRegistries(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("component", "containerd")
	if c.registries == nil { // Start without Init
		c.registries = &registries.Registries{}
	}
	files := c.registries.HostsFiles()
	removed, err := registries.WriteHostsDir(c.HostsDir(), files)
	if err != nil {
		return fmt.Errorf("write the registry configuration: %w", err)
	}
	if len(removed) > 0 {
		logger.Info("Removed the configuration of registries no longer in the registries file", "registries", removed)
	}
	if len(files) > 0 {
		logger.Info("Pulling through the private registry configuration", "file", c.registries.File, "hosts", len(files), "dir", c.HostsDir())
	}
	return nil
}

// Ready waits until the CRI runtime service says it is ready.
func (c *Containerd) Ready(ctx context.Context) error {
	var last error
	for {
		if last = c.criReady(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd CRI not ready (%v): %w", last, ctx.Err())
		case err := <-c.Err():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Containerd) criReady(ctx context.Context) error {
	if _, err := os.Stat(c.Socket()); err != nil {
		return err
	}
	svc, err := cri.NewRemoteRuntimeServiceBuilder().WithEndpoint(c.Endpoint()).WithConnectionTimeout(2 * time.Second).WithTracerProvider(nil).Build(ctx)
	if err != nil {
		return err
	}
	status, err := svc.Status(ctx, false)
	if err != nil {
		return err
	}
	for _, cond := range status.GetStatus().GetConditions() {
		if cond.GetType() == "RuntimeReady" && !cond.GetStatus() {
			return fmt.Errorf("RuntimeReady is false: %s", cond.GetMessage())
		}
	}
	return nil
}

// Snapshotter picks overlayfs when the kernel has it, else native.
func Snapshotter() string {
	b, err := os.ReadFile("/proc/filesystems")
	if err == nil && strings.Contains(string(b), "\toverlay\n") {
		return "overlayfs"
	}
	return "native"
}

// capSysResource is the capability needed to lower an oom_score_adj, which
// the pause container and Guaranteed pods ask for.
const capSysResource = 24

// hasCapability reads this process's effective capability set. Sandboxed
// hosts (some VMs and containers) withhold CAP_SYS_RESOURCE even from root,
// and runc then fails to start every pod unless the scores are restricted.
func hasCapability(bit uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err != nil || caps&(1<<bit) != 0
		}
	}
	return true
}
