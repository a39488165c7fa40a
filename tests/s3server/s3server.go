// Package s3server runs an S3-compatible server for the snapshot tests:
// gofakes3 (a Go S3 server) in memory on a port of a loopback or test network address, behind a check of
// each request's AWS Signature V4 against one access key and secret, which
// gofakes3 itself does not do. So a test shows that regente signs with the
// credentials it was given, and that wrong ones are refused.
package s3server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Server is a running S3 server.
type Server struct {
	Endpoint  string // host:port, plain HTTP
	AccessKey string
	SecretKey string
	Refused   atomic.Int64 // requests refused for a bad signature
	srv       *http.Server
}

// Start serves the buckets on a free port of the IP address ip (e.g.
// 127.0.0.1, or a test network's bridge address) until Close.
func Start(ip, accessKey, secretKey string, buckets ...string) (*Server, error) {
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	s3 := gofakes3.New(backend).Server()
	s := &Server{Endpoint: ln.Addr().String(), AccessKey: accessKey, SecretKey: secretKey}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.verify(r); err != nil {
			s.Refused.Add(1)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "<Error><Code>SignatureDoesNotMatch</Code><Message>%s</Message></Error>", err)
			return
		}
		s3.ServeHTTP(w, r)
	})}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// verify checks the request's Authorization header, AWS Signature V4
// (docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html).
func (s *Server) verify(r *http.Request) error {
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")
	if !ok {
		return fmt.Errorf("not signed with AWS4-HMAC-SHA256")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(auth, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/") // key/date/region/s3/aws4_request
	if len(scope) != 5 || scope[0] != s.AccessKey {
		return fmt.Errorf("unknown access key")
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	var headers strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		fmt.Fprintf(&headers, "%s:%s\n", h, strings.TrimSpace(v))
	}
	query := r.URL.Query() // Encode sorts by key, as the canonical query wants
	canonicalRequest := strings.Join([]string{r.Method, r.URL.EscapedPath(),
		strings.ReplaceAll(query.Encode(), "+", "%20"), headers.String(), fields["SignedHeaders"],
		r.Header.Get("X-Amz-Content-Sha256")}, "\n")
	sum := sha256.Sum256([]byte(canonicalRequest))
	stringToSign := strings.Join([]string{"AWS4-HMAC-SHA256", r.Header.Get("X-Amz-Date"),
		strings.Join(scope[1:], "/"), hex.EncodeToString(sum[:])}, "\n")
	key := []byte("AWS4" + s.SecretKey)
	for _, part := range scope[1:] {
		key = mac(key, part)
	}
	if want := hex.EncodeToString(mac(key, stringToSign)); !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return fmt.Errorf("the signature does not match")
	}
	return nil
}

func mac(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
