// Package zstdcli compresses through the zstd program (Debian's zstd
// package) for the build tools: its level 19 stores regente's payload and
// release download about 8% smaller than the Go encoder's best, and its
// output depends only on its input and settings. The Go side only ever
// decompresses (klauspost/compress), within the window given here.
package zstdcli
