// Package s3 copies datastore snapshots to S3-compatible storage and back
// (k3s's --etcd-s3*), with minio-go: a snapshot is its .db file and its
// sidecar .db.json, uploaded in that order, so a listing, which reads only
// sidecars, never shows a snapshot whose file is missing. A download is
// verified (checksum, then the datastore's own checks) before a restore
// uses it. Credentials are never logged.
package s3
