// Package server is the `regente server` verb: it loads options
// (defaults < config files < REGENTE_* environment < flags), validates
// them, sets up logging and runs pkg/server.
package server
