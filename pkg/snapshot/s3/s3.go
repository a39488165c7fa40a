package s3

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/snapshot"
)

// Store is one bucket folder holding snapshots.
type Store struct {
	client  *minio.Client
	bucket  string
	folder  string
	timeout time.Duration
	where   string // s3://bucket/folder, for messages
}

// New connects to the bucket c names and checks that it exists.
func New(ctx context.Context, c config.S3) (*Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	transport, err := minio.DefaultTransport(!c.Insecure)
	if err != nil {
		return nil, err
	}
	if !c.Insecure {
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.SkipSSLVerify} //nolint:gosec // the user asked for it with --etcd-s3-skip-ssl-verify
		pem := c.EndpointCAData
		if c.EndpointCA != "" {
			if pem, err = os.ReadFile(c.EndpointCA); err != nil {
				return nil, fmt.Errorf("--etcd-s3-endpoint-ca: %w", err)
			}
		}
		if len(pem) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--etcd-s3-endpoint-ca %s holds no PEM certificate: give the CA bundle that signed the endpoint's certificate", cmp.Or(c.EndpointCA, "(from the config Secret)"))
			}
			tlsCfg.RootCAs = pool
		}
		transport.TLSClientConfig = tlsCfg
	}
	creds := credentials.NewStaticV4(c.AccessKey, c.SecretKey, "")
	if c.AccessKey == "" {
		// No keys given: the machine's IAM role, as k3s and the AWS tools do.
		creds = credentials.NewIAM("")
	}
	client, err := minio.New(c.Endpoint, &minio.Options{Creds: creds, Secure: !c.Insecure, Region: c.Region, Transport: transport})
	if err != nil {
		return nil, fmt.Errorf("--etcd-s3-endpoint %q: %w", c.Endpoint, err)
	}
	s := &Store{client: client, bucket: c.Bucket, folder: strings.Trim(c.Folder, "/"), timeout: c.Timeout}
	s.where = "s3://" + path.Join(c.Bucket, s.folder)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ok, err := client.BucketExists(ctx, c.Bucket)
	if err != nil {
		return nil, fmt.Errorf("reach the S3 bucket %s at %s: %w (check --etcd-s3-endpoint, the credentials and --etcd-s3-insecure)", c.Bucket, c.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("S3 bucket %q does not exist at %s: create it, or fix --etcd-s3-bucket", c.Bucket, c.Endpoint)
	}
	return s, nil
}

// Where is the store's s3://bucket/folder.
func (s *Store) Where() string { return s.where }

func (s *Store) key(file string) string {
	if s.folder == "" {
		return file
	}
	return s.folder + "/" + file
}

// Upload copies the snapshot name from dir: its file, then its sidecar.
func (s *Store) Upload(ctx context.Context, dir, name string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	for _, file := range []string{name + ".db", name + ".db.json"} {
		if _, err := s.client.FPutObject(ctx, s.bucket, s.key(file), filepath.Join(dir, file), minio.PutObjectOptions{}); err != nil {
			return fmt.Errorf("upload %s to %s: %w", file, s.where, err)
		}
	}
	return nil
}

// List returns the snapshots in the folder, newest first, from their
// sidecars; an object that is not one is skipped.
func (s *Store) List(ctx context.Context) ([]snapshot.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	prefix := ""
	if s.folder != "" {
		prefix = s.folder + "/"
	}
	var out []snapshot.Info
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list %s: %w", s.where, obj.Err)
		}
		if !strings.HasSuffix(obj.Key, ".db.json") || obj.Size > 1<<20 {
			continue
		}
		info, err := s.sidecar(ctx, obj.Key)
		if err != nil {
			continue
		}
		out = append(out, *info)
	}
	slices.SortFunc(out, func(a, b snapshot.Info) int { return b.Created.Compare(a.Created) })
	return out, nil
}

func (s *Store) sidecar(ctx context.Context, key string) (*snapshot.Info, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, 1<<20))
	if err != nil {
		return nil, err
	}
	var info snapshot.Info
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, err
	}
	if info.Name+".db.json" != path.Base(key) {
		return nil, fmt.Errorf("sidecar %s names %q", key, info.Name)
	}
	return &info, nil
}

// Has reports whether the folder holds the snapshot name.
func (s *Store) Has(ctx context.Context, name string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.client.StatObject(ctx, s.bucket, s.key(name+".db.json"), minio.StatObjectOptions{})
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for snapshot %s in %s: %w", name, s.where, err)
	}
	return true, nil
}

// Download copies the snapshot name into dir and verifies it; it returns
// the local file. A file of that name already in dir is replaced only
// once the download is whole.
func (s *Store) Download(ctx context.Context, name, dir string) (string, error) {
	name = strings.TrimSuffix(name, ".db")
	if ok, err := s.Has(ctx, name); err != nil {
		return "", err
	} else if !ok {
		return "", fmt.Errorf("no snapshot %q in %s: see regente etcd-snapshot ls with the same --etcd-s3 flags", name, s.where)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	partial := filepath.Join(dir, ".download-"+strconv.Itoa(os.Getpid())+"-"+name)
	if err := os.MkdirAll(partial, 0o700); err != nil {
		return "", err
	}
	defer os.RemoveAll(partial)
	for _, file := range []string{name + ".db", name + ".db.json"} {
		if err := s.client.FGetObject(ctx, s.bucket, s.key(file), filepath.Join(partial, file), minio.GetObjectOptions{}); err != nil {
			return "", fmt.Errorf("download %s from %s: %w", file, s.where, err)
		}
		if err := os.Chmod(filepath.Join(partial, file), 0o600); err != nil {
			return "", err
		}
	}
	if _, err := snapshot.Verify(filepath.Join(partial, name+".db")); err != nil {
		return "", fmt.Errorf("snapshot %s downloaded from %s: %w", name, s.where, err)
	}
	for _, file := range []string{name + ".db.json", name + ".db"} {
		if err := os.Rename(filepath.Join(partial, file), filepath.Join(dir, file)); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, name+".db"), nil
}

// Delete removes the snapshot name: its sidecar first, so that a
// half-done delete leaves no listed snapshot without its file.
func (s *Store) Delete(ctx context.Context, name string) error {
	name = strings.TrimSuffix(name, ".db")
	if ok, err := s.Has(ctx, name); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("no snapshot %q in %s (see etcd-snapshot ls)", name, s.where)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var errs []error
	for _, file := range []string{name + ".db.json", name + ".db"} {
		if err := s.client.RemoveObject(ctx, s.bucket, s.key(file), minio.RemoveObjectOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("delete %s from %s: %w", file, s.where, err))
		}
	}
	return errors.Join(errs...)
}

// Prune keeps the newest keep snapshots whose names start with prefix and
// deletes the rest, as snapshot.Prune does on disk.
func (s *Store) Prune(ctx context.Context, prefix string, keep int) ([]string, error) {
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, name := range snapshot.Expired(all, prefix, keep) {
		if err := s.Delete(ctx, name); err != nil {
			return deleted, err
		}
		deleted = append(deleted, name)
	}
	return deleted, nil
}
