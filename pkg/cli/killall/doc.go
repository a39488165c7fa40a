// Package killall is the `regente killall` verb that regente-killall.sh
// (written by install.sh) runs once the service is stopped: it ends the
// node's pods and tears down what they left on the host, through
// pkg/killall. It keeps the data dir's contents.
package killall
