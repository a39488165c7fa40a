// Package sqlitelimit watches a server alone on SQLite for the sign that
// it has outgrown it: the API server's own request latency staying over
// the upstream SLOs (p99 of mutating and get calls over 1 s, of lists
// over 30 s). It then logs a warning with the way forward, a move to
// embedded etcd with --cluster-init, which copies the SQLite data in.
//
// The figures come from the API server's histograms in this process's
// metrics registry; nothing is scraped over the network.
package sqlitelimit
