package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// S3 holds the --etcd-s3* options, k3s's names: where snapshots are
// copied off the machine. The server and `regente etcd-snapshot` share
// them, so one config file serves both.
type S3 struct {
	Enabled       bool          // --etcd-s3
	Endpoint      string        // --etcd-s3-endpoint: host[:port]
	EndpointCA    string        // --etcd-s3-endpoint-ca: PEM file
	SkipSSLVerify bool          // --etcd-s3-skip-ssl-verify
	AccessKey     string        // --etcd-s3-access-key; env AWS_ACCESS_KEY_ID too
	SecretKey     string        // --etcd-s3-secret-key; env AWS_SECRET_ACCESS_KEY too
	Bucket        string        // --etcd-s3-bucket
	Region        string        // --etcd-s3-region
	Folder        string        // --etcd-s3-folder: key prefix
	Insecure      bool          // --etcd-s3-insecure: plain HTTP
	Timeout       time.Duration // --etcd-s3-timeout: per operation
	ConfigSecret  string        // --etcd-s3-config-secret: Secret in kube-system holding the rest

	// EndpointCAData is the CA bundle a config Secret carries.
	EndpointCAData []byte
}

// S3Flags are the flag and config-file names of the S3 options.
var S3Flags = []string{"etcd-s3", "etcd-s3-endpoint", "etcd-s3-endpoint-ca", "etcd-s3-skip-ssl-verify",
	"etcd-s3-access-key", "etcd-s3-secret-key", "etcd-s3-bucket", "etcd-s3-region", "etcd-s3-folder",
	"etcd-s3-insecure", "etcd-s3-timeout", "etcd-s3-config-secret"}

// NewS3 returns the defaults, k3s's.
func NewS3() S3 {
	return S3{Endpoint: "s3.amazonaws.com", Region: "us-east-1", Timeout: 5 * time.Minute}
}

// AddFlags registers the options on fs as --etcd-s3*; with shortNames also
// as --s3*, the names k3s's etcd-snapshot verb documents.
func (c *S3) AddFlags(fs *pflag.FlagSet, shortNames bool) {
	for _, name := range []string{"etcd-s3", "s3"} {
		if name == "s3" && !shortNames {
			break
		}
		fs.BoolVar(&c.Enabled, name, c.Enabled, "Copy snapshots to S3-compatible storage too (save, list, prune and restore from there)")
		fs.StringVar(&c.Endpoint, name+"-endpoint", c.Endpoint, "S3 endpoint, host[:port]")
		fs.StringVar(&c.EndpointCA, name+"-endpoint-ca", c.EndpointCA, "PEM file of the CA that signed the S3 endpoint's certificate (default: the system's CAs)")
		fs.BoolVar(&c.SkipSSLVerify, name+"-skip-ssl-verify", c.SkipSSLVerify, "Do not verify the S3 endpoint's certificate")
		fs.StringVar(&c.AccessKey, name+"-access-key", c.AccessKey, "S3 access key (env AWS_ACCESS_KEY_ID; default: the machine's IAM role)")
		fs.StringVar(&c.SecretKey, name+"-secret-key", c.SecretKey, "S3 secret key (env AWS_SECRET_ACCESS_KEY)")
		fs.StringVar(&c.Bucket, name+"-bucket", c.Bucket, "S3 bucket the snapshots go to; it must exist")
		fs.StringVar(&c.Region, name+"-region", c.Region, "S3 region")
		fs.StringVar(&c.Folder, name+"-folder", c.Folder, "Folder (key prefix) in the bucket")
		fs.BoolVar(&c.Insecure, name+"-insecure", c.Insecure, "Talk plain HTTP to the S3 endpoint")
		fs.DurationVar(&c.Timeout, name+"-timeout", c.Timeout, "Time limit of each S3 upload, download or listing")
		fs.StringVar(&c.ConfigSecret, name+"-config-secret", c.ConfigSecret, "Secret in kube-system whose etcd-s3-* keys configure S3 where no flag does (server only)")
		if name == "s3" {
			for _, f := range S3Flags {
				_ = fs.MarkHidden(strings.TrimPrefix(f, "etcd-"))
			}
		}
	}
}

// Validate reports unusable S3 options, naming the flag and the fix.
func (c *S3) Validate() error {
	if !c.Enabled {
		return nil
	}
	var problems []error
	if c.Bucket == "" && c.ConfigSecret == "" {
		problems = append(problems, errors.New("--etcd-s3 needs --etcd-s3-bucket (or --etcd-s3-config-secret naming a Secret that holds etcd-s3-bucket)"))
	}
	if strings.Contains(c.Endpoint, "://") {
		problems = append(problems, fmt.Errorf("--etcd-s3-endpoint %q must be host[:port], without a scheme: drop the scheme, and add --etcd-s3-insecure for plain HTTP", c.Endpoint))
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		problems = append(problems, errors.New("--etcd-s3-access-key and --etcd-s3-secret-key go together: give both, or neither to use the machine's IAM role"))
	}
	if c.Timeout <= 0 {
		problems = append(problems, fmt.Errorf("--etcd-s3-timeout %s must be positive, e.g. 5m", c.Timeout))
	}
	return errors.Join(problems...)
}
