package embedded

import (
	_ "embed"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"regente.io/regente/pkg/payload"
)

// archive is the payload: helper binaries and system images (see
// pkg/payload). A package variable because go:embed can fill nothing else;
// never written.
//
//go:embed payload.tar.zst
var archive []byte

// archiveSHA256 is archive's checksum, recorded by hack/payloadpack.
//
//go:embed payload.tar.zst.sha256
var archiveSHA256 string

// Archive returns the embedded payload. Its Release drops the archive's
// pages from this process once it is unpacked: they belong to the binary's
// read-only file mapping, so the kernel reads them back from the binary
// should anything touch them again.
func Archive() payload.Archive {
	return payload.Archive{Data: archive, SHA256: strings.TrimSpace(archiveSHA256), Release: release}
}

func release() {
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(archive)))
	// Only whole pages inside the archive: the pages at either end are
	// shared with other data.
	skip := (page - start%page) % page
	if uintptr(len(archive)) < skip+page {
		return
	}
	whole := (uintptr(len(archive)) - skip) &^ (page - 1)
	_ = unix.Madvise(archive[skip:skip+whole], unix.MADV_DONTNEED) // best effort: memory only
}
