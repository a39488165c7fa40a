// Package selfextract owns the format of regente's release download: a
// small launcher program with the zstd-compressed regente binary and a
// trailer appended to it. Run once, the launcher unpacks regente over its
// own file (or, where that file cannot be replaced, into a cache folder)
// and executes it with the same arguments; later runs start regente
// directly. It must stay free of regente's other packages: the launcher
// links only this package and zstd, so that the download stays small.
package selfextract
