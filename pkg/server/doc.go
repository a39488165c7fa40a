// Package server is the ONE wiring list of `regente server`: which
// components run, in which order, with which small configs. It also owns
// the checks that must pass before anything in the data dir is written
// (port free, datastore file sane, data dir writable) and the lock that
// keeps two servers off one data dir.
package server
