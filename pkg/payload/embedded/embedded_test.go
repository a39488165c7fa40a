package embedded

import (
	"testing"

	"regente.io/regente/pkg/payload"
)

// The recorded checksum matches the bytes, and dropping the pages loses
// nothing: the kernel reads them back from the binary.
func TestReleaseKeepsContent(t *testing.T) {
	a := Archive()
	if got := payload.NewArchive(a.Data).SHA256; got != a.SHA256 {
		t.Fatalf("embedded archive hashes to %s, recorded %s: rerun hack/payload.sh", got, a.SHA256)
	}
	a.Release()
	if got := payload.NewArchive(a.Data).SHA256; got != a.SHA256 {
		t.Fatalf("after Release the archive hashes to %s, want %s", got, a.SHA256)
	}
}
