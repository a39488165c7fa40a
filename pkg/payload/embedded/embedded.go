package embedded

import _ "embed"

// Archive is the payload: helper binaries and system images (see
// pkg/payload). A package variable because go:embed can fill nothing else;
// never written.
//
//go:embed payload.tar.zst
var Archive []byte
