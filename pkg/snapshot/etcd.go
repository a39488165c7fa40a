package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	clientsnapshot "go.etcd.io/etcd/client/v3/snapshot"
	etcdutl "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"regente.io/regente/pkg/atomicfile"
)

// Kinds of snapshot, as the sidecar records them.
const (
	KindSQLite = "sqlite"
	KindEtcd   = "etcd"
)

// SaveEtcd streams a snapshot of the etcd cluster cfg reaches into dir as
// <name>.db with its sidecar. etcd's snapshot is one consistent read of
// the backend, taken while the cluster keeps writing.
func SaveEtcd(ctx context.Context, cfg clientv3.Config, dir, name string) (*Info, error) {
	out, err := prepare(dir, name)
	if err != nil {
		return nil, err
	}
	tmp := out + ".partial"
	os.Remove(tmp)
	if _, err := clientsnapshot.SaveWithVersion(ctx, zap.NewNop(), cfg, tmp); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("take an etcd snapshot: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return nil, err
	}
	return finish(tmp, out, name, KindEtcd)
}

// verifyEtcd checks an etcd snapshot's own hash and that it opens.
func verifyEtcd(file string) error {
	if _, err := etcdutl.NewV3(zap.NewNop()).Status(file); err != nil {
		return fmt.Errorf("snapshot %s is not a whole etcd snapshot: %w", file, err)
	}
	return nil
}

// RestoreEtcd verifies snapshot and makes it the data of a single-member
// cluster in dataDir, named name and reached by its peers at peerURL. The
// data dir it replaces is moved aside, never deleted; that dir is returned.
func RestoreEtcd(snapshotFile, dataDir, name, peerURL string) (string, error) {
	if err := checkKind(snapshotFile, KindEtcd, "this server runs embedded etcd: restore it on a server that keeps its data in SQLite (without --cluster-init)"); err != nil {
		return "", err
	}
	if _, err := Verify(snapshotFile); err != nil {
		return "", err
	}
	aside := ""
	if _, err := os.Stat(dataDir); err == nil {
		aside = dataDir + "-old-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(dataDir, aside); err != nil {
			return "", fmt.Errorf("keep the current etcd data aside: %w", err)
		}
	}
	err := etcdutl.NewV3(zap.NewNop()).Restore(etcdutl.RestoreConfig{
		SnapshotPath:        snapshotFile,
		Name:                name,
		OutputDataDir:       dataDir,
		PeerURLs:            []string{peerURL},
		InitialCluster:      name + "=" + peerURL,
		InitialClusterToken: "regente",
		// Kubernetes clients hold resource versions from before the
		// restore; bumping past them and marking the old ones compacted
		// makes their watches relist instead of missing changes.
		RevisionBump:  1_000_000_000,
		MarkCompacted: true,
	})
	if err != nil {
		return aside, fmt.Errorf("restore etcd snapshot %s into %s: %w", snapshotFile, dataDir, err)
	}
	return aside, nil
}

// readInfo reads a snapshot's sidecar.
func readInfo(file string) (*Info, error) {
	b, err := os.ReadFile(file + ".json")
	if err != nil {
		return nil, fmt.Errorf("snapshot %s has no checksum file %s.json (%v): it is not a regente snapshot, or it was copied without it", file, file, err)
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("checksum file %s.json is damaged: %w", file, err)
	}
	if info.Kind == "" {
		info.Kind = KindSQLite
	}
	return &info, nil
}

// writeInfo writes a snapshot's sidecar.
func writeInfo(file string, info *Info) error {
	sidecar, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(atomicfile.File{Path: file + ".json", Data: append(sidecar, '\n'), Mode: 0o600}); err != nil {
		return fmt.Errorf("write the snapshot's checksum file: %w", err)
	}
	return nil
}

// checkKind refuses a snapshot of another kind of datastore than want,
// before its content is checked as one.
func checkKind(file, want, advice string) error {
	info, err := readInfo(file)
	if err != nil {
		return err
	}
	if info.Kind != want {
		article := "a"
		if info.Kind == KindEtcd {
			article = "an"
		}
		return fmt.Errorf("snapshot %s is %s %s snapshot and %s", file, article, info.Kind, advice)
	}
	return nil
}

// prepare checks name and returns the snapshot's path in dir.
func prepare(dir, name string) (string, error) {
	if name == "" || filepath.Base(name) != name || name[0] == '.' {
		return "", fmt.Errorf("snapshot name %q: use letters, digits, dashes and dots, not a path", name)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create the snapshot dir: %w", err)
	}
	out := filepath.Join(dir, name+".db")
	if _, err := os.Stat(out); err == nil {
		return "", fmt.Errorf("snapshot %s exists: pick another --name", out)
	}
	return out, nil
}

// finish checksums tmp, writes the sidecar and moves tmp to out.
func finish(tmp, out, name, kind string) (*Info, error) {
	info, err := describe(tmp, name)
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	info.Kind = kind
	if err := writeInfo(out, info); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, fmt.Errorf("finish the snapshot: %w", err)
	}
	return info, nil
}
