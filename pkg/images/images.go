package images

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/platforms"
	"github.com/fsnotify/fsnotify"
	"github.com/klauspost/compress/zstd"
	"k8s.io/klog/v2"

	"regente.io/regente/pkg/component"
	"regente.io/regente/pkg/sysimages"
)

// PauseImage is the sandbox image every pod runs, built from images/pause
// and carried in the payload. The .invalid name can never resolve to a
// registry, so a missing image is never pulled from anywhere.
const PauseImage = sysimages.PauseRef

// criNamespace is the containerd namespace the CRI plugin (and so the
// kubelet) sees.
const criNamespace = "k8s.io"

// Labels that make the CRI plugin list an image and keep it from GC.
var importLabels = map[string]string{
	"io.cri-containerd.image":  "managed",
	"io.cri-containerd.pinned": "pinned",
}

// Config says where images come from.
type Config struct {
	// Socket is containerd's socket.
	Socket string
	// Dirs are folders of archives, imported in order at start: the system
	// images first, then the user's images dir.
	Dirs []string
	// WatchDir is the user's images dir: archives that appear there later
	// are imported too. Created (0700) if missing.
	WatchDir string
}

// Importer is the images component: it imports at start, then watches.
type Importer struct {
	cfg    Config
	cancel context.CancelFunc
	done   chan struct{}
}

var _ component.Component = (*Importer)(nil)

// New returns the images component.
func New(cfg Config) *Importer { return &Importer{cfg: cfg} }

// Name implements component.Component.
func (i *Importer) Name() string { return "images" }

// Stop ends the watcher.
func (i *Importer) Stop(ctx context.Context) error {
	if i.cancel == nil {
		return nil
	}
	i.cancel()
	select {
	case <-i.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start imports every archive once. Only a failure to reach containerd is
// an error; a bad archive is logged and skipped.
func (i *Importer) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("component", "images")
	client, err := containerd.New(i.cfg.Socket, containerd.WithTimeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("connect to containerd at %s: %w", i.cfg.Socket, err)
	}
	ctx = namespaces.WithNamespace(ctx, criNamespace)
	for _, dir := range i.cfg.Dirs {
		for _, path := range Archives(dir) {
			importLogged(ctx, logger, client, path)
		}
	}
	if i.cfg.WatchDir == "" {
		return client.Close()
	}
	if err := os.MkdirAll(i.cfg.WatchDir, 0o700); err != nil {
		_ = client.Close()
		return fmt.Errorf("create images dir: %w", err)
	}
	watcher, err := fsnotify.NewWatcher()
	if err == nil {
		err = watcher.Add(i.cfg.WatchDir)
	}
	if err != nil {
		_ = client.Close()
		return fmt.Errorf("watch images dir %s: %w", i.cfg.WatchDir, err)
	}
	watchCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	i.cancel, i.done = cancel, make(chan struct{})
	go func() {
		defer close(i.done)
		defer client.Close()
		defer watcher.Close()
		watch(watchCtx, logger, client, watcher)
	}()
	return nil
}

func importLogged(ctx context.Context, logger klog.Logger, client *containerd.Client, path string) {
	begin := time.Now()
	names, err := ImportFile(ctx, client, path)
	if err != nil {
		logger.Error(err, "Skipping image archive", "file", path)
		return
	}
	logger.Info("Imported images", "file", path, "images", names, "took", time.Since(begin).Round(time.Millisecond))
}

// settle is how long an archive must stop changing before it is imported,
// so a file still being copied in is not read half-written.
const settle = time.Second

// watch imports archives created or rewritten in the images dir.
func watch(ctx context.Context, logger klog.Logger, client *containerd.Client, watcher *fsnotify.Watcher) {
	pending := map[string]time.Time{} // path -> last change
	tick := time.NewTicker(settle / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-watcher.Events:
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write) {
				if isArchive(ev.Name) {
					pending[ev.Name] = time.Now()
				}
			}
		case err := <-watcher.Errors:
			logger.Error(err, "Watching the images dir")
		case now := <-tick.C:
			for path, changed := range pending {
				if now.Sub(changed) >= settle {
					delete(pending, path)
					importLogged(ctx, logger, client, path)
				}
			}
		}
	}
}

// Archives lists the image archives in dir, by name.
func Archives(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && isArchive(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

func isArchive(name string) bool {
	for _, suffix := range []string{".tar", ".tar.gz", ".tgz", ".tar.zst"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// ImportFile imports one archive for this machine's platform and returns
// the image names it held.
func ImportFile(ctx context.Context, client *containerd.Client, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := decompress(path, f)
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", path, err)
	}
	imgs, err := client.Import(ctx, r,
		containerd.WithImportPlatform(platforms.Default()),
		containerd.WithImageLabels(importLabels),
		containerd.WithSkipMissing())
	if err != nil {
		return nil, fmt.Errorf("import %s (not a docker-archive or OCI image tarball?): %w", path, err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("import %s: no image names in the archive (an OCI layout needs the io.containerd.image.name or org.opencontainers.image.ref.name annotation)", path)
	}
	names := make([]string, 0, len(imgs))
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	return names, nil
}

// maxZstdWindow is the largest zstd window an image archive may use.
const maxZstdWindow = 128 << 20

func decompress(path string, r io.Reader) (io.Reader, error) {
	switch {
	case strings.HasSuffix(path, ".tar.gz"), strings.HasSuffix(path, ".tgz"):
		return gzip.NewReader(bufio.NewReader(r))
	case strings.HasSuffix(path, ".tar.zst"):
		// A frame may ask for a window of up to 512 MiB, which the
		// decoder would allocate before the first byte comes out: more
		// than an edge node has. 128 MiB is what `zstd --long` and
		// `--ultra -22` use; anything larger is refused when read.
		zr, err := zstd.NewReader(r, zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return r, nil
}
