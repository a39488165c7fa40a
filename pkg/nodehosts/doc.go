// Package nodehosts keeps the NodeHosts key of CoreDNS's ConfigMap a hosts
// file of every node's InternalIP and name, which the Corefile's hosts
// plugin serves, so pods resolve node names. It owns only that key
// (server-side apply with its own field manager); the Corefile belongs to
// the coredns add-on manifest.
package nodehosts
