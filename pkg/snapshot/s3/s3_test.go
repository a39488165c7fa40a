package s3

import (
	"context"
	"database/sql/driver"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/snapshot"
	"regente.io/regente/tests/s3server"
)

func startS3(t *testing.T) (*s3server.Server, config.S3) {
	t.Helper()
	srv, err := s3server.Start("127.0.0.1", "AKTEST", "secret-key-for-tests", "snapshots")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := config.NewS3()
	c.Enabled, c.Endpoint, c.Insecure, c.Bucket, c.Folder = true, srv.Endpoint, true, "snapshots", "cluster-a/"
	c.AccessKey, c.SecretKey, c.Timeout = srv.AccessKey, srv.SecretKey, 30*time.Second
	return srv, c
}

// saveSnapshot takes a real SQLite snapshot of a small kine table.
func saveSnapshot(t *testing.T, dir, name string) *snapshot.Info {
	t.Helper()
	db := filepath.Join(t.TempDir(), "state.db")
	conn, err := (&sqlite3.SQLiteDriver{}).Open("file:" + db)
	if err != nil {
		t.Fatal(err)
	}
	c := conn.(*sqlite3.SQLiteConn)
	if _, err := c.Exec("CREATE TABLE kine (id INTEGER PRIMARY KEY, name TEXT)", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec("INSERT INTO kine (name) VALUES (?)", []driver.Value{name}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	info, err := snapshot.SaveSQLite(db, dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestUploadListDownloadPrune(t *testing.T) {
	srv, c := startS3(t)
	ctx := context.Background()
	store, err := New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if store.Where() != "s3://snapshots/cluster-a" {
		t.Errorf("Where = %s", store.Where())
	}
	dir := t.TempDir()
	for _, name := range []string{"etcd-snapshot-n-1", "etcd-snapshot-n-2", "etcd-snapshot-n-3", "on-demand-n-1"} {
		saveSnapshot(t, dir, name)
		if err := store.Upload(ctx, dir, name); err != nil {
			t.Fatalf("upload %s: %v", name, err)
		}
		time.Sleep(10 * time.Millisecond) // distinct creation times
	}
	list, err := store.List(ctx)
	if err != nil || len(list) != 4 || list[0].Name != "on-demand-n-1" {
		t.Fatalf("List = %v, %v; want 4 snapshots, newest first", list, err)
	}

	// A download is verified and lands in the given dir.
	restoreDir := t.TempDir()
	file, err := store.Download(ctx, "etcd-snapshot-n-2.db", restoreDir)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := snapshot.Verify(file); err != nil || info.Name != "etcd-snapshot-n-2" {
		t.Errorf("downloaded snapshot: %v, %v", info, err)
	}
	if _, err := store.Download(ctx, "missing", restoreDir); err == nil || !strings.Contains(err.Error(), `no snapshot "missing" in s3://snapshots/cluster-a`) {
		t.Errorf("download of a missing snapshot: %v", err)
	}

	deleted, err := store.Prune(ctx, snapshot.ScheduledPrefix, 1)
	if err != nil || strings.Join(deleted, ",") != "etcd-snapshot-n-2,etcd-snapshot-n-1" {
		t.Errorf("Prune = %v, %v; want the two older scheduled ones", deleted, err)
	}
	if err := store.Delete(ctx, "on-demand-n-1"); err != nil {
		t.Error(err)
	}
	if list, _ := store.List(ctx); len(list) != 1 || list[0].Name != "etcd-snapshot-n-3" {
		t.Errorf("after prune and delete: %v", list)
	}
	if n := srv.Refused.Load(); n != 0 {
		t.Errorf("the server refused %d of the client's signatures", n)
	}
}

// A damaged object is refused at download, and nothing lands in the dir.
func TestDownloadVerifies(t *testing.T) {
	_, c := startS3(t)
	ctx := context.Background()
	store, err := New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	saveSnapshot(t, dir, "s")
	db := filepath.Join(dir, "s.db")
	data, _ := os.ReadFile(db)
	os.WriteFile(db, data[:len(data)/2], 0o600)
	if err := store.Upload(ctx, dir, "s"); err != nil {
		t.Fatal(err)
	}
	restoreDir := t.TempDir()
	if _, err := store.Download(ctx, "s", restoreDir); err == nil || !strings.Contains(err.Error(), "damaged or truncated") {
		t.Errorf("download of a damaged snapshot: %v", err)
	}
	if left, _ := os.ReadDir(restoreDir); len(left) != 0 {
		t.Errorf("a refused download left %v", left)
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	srv, c := startS3(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(*config.S3)
		want string
	}{
		{"missing bucket", func(c *config.S3) { c.Bucket = "nope" }, `S3 bucket "nope" does not exist`},
		{"wrong secret", func(c *config.S3) { c.SecretKey = "wrong" }, "reach the S3 bucket snapshots"},
		{"scheme in endpoint", func(c *config.S3) { c.Endpoint = "http://" + srv.Endpoint }, "without a scheme"},
		{"half the keys", func(c *config.S3) { c.SecretKey = "" }, "go together"},
		{"no bucket", func(c *config.S3) { c.Bucket = "" }, "needs --etcd-s3-bucket"},
	} {
		bad := c
		tc.edit(&bad)
		if _, err := New(ctx, bad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error saying %q, got %v", tc.name, tc.want, err)
		} else if strings.Contains(err.Error(), bad.SecretKey) && bad.SecretKey != "" {
			t.Errorf("%s: the error shows the secret key: %v", tc.name, err)
		}
	}
	if srv.Refused.Load() == 0 {
		t.Error("the wrong secret key was not refused by the server")
	}
}

func TestFromSecret(t *testing.T) {
	c, err := FromSecret(config.NewS3(), "s3-config", map[string][]byte{
		"etcd-s3-bucket": []byte("b"), "etcd-s3-endpoint": []byte("minio:9000"), "etcd-s3-insecure": []byte("true"),
		"etcd-s3-timeout": []byte("1m"), "etcd-s3-endpoint-ca": []byte("PEM"), "etcd-s3-access-key": []byte("ak"),
	})
	if err != nil || c.Bucket != "b" || c.Endpoint != "minio:9000" || !c.Insecure || c.Timeout != time.Minute || string(c.EndpointCAData) != "PEM" || c.AccessKey != "ak" || c.Region != "us-east-1" {
		t.Errorf("FromSecret = %+v, %v", c, err)
	}
	for data, want := range map[string]string{"etcd-s3-insecure": "is not true or false", "etcd-s3-timeout": "is not a duration"} {
		if _, err := FromSecret(config.NewS3(), "s3-config", map[string][]byte{"etcd-s3-bucket": []byte("b"), data: []byte("x")}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: x: %v", data, err)
		}
	}
	if _, err := FromSecret(config.NewS3(), "s3-config", nil); err == nil || !strings.Contains(err.Error(), "kube-system/s3-config has no etcd-s3-bucket") {
		t.Errorf("no bucket: %v", err)
	}
}
