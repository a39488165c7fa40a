// Package helmchart is regente's Helm chart controller: it installs the
// HelmChart and HelmChartConfig CRDs (helm.cattle.io/v1, the shape k3s users
// already write, taken from k3s-io/helm-controller's own API package and CRD
// definitions) and keeps one Helm release per HelmChart with the Helm v4 Go
// SDK: installed when the chart appears, upgraded when its spec, its
// HelmChartConfig or its values Secrets change, uninstalled when it is
// deleted (a finalizer holds the object until then).
//
// Unlike k3s, which runs every install as a Job from a helm image, the
// controller runs Helm in the server process. That needs no image at all and
// no node: charts install on a control-plane-only server, and before any
// node is Ready.
//
// A chart comes from spec.chartContent (a base64 .tgz, for air-gapped
// installs), from the server's static directory when spec.chart is
// https://%{KUBERNETES_API}%/static/<path> as k3s writes it, from a chart
// repository (spec.repo + spec.chart + spec.version) or from an https://,
// http:// or oci:// URL in spec.chart. Whether a release is up to date is
// decided by a hash of everything that shapes it, stored as a label on the
// Helm release, so a restart does not re-download or re-upgrade anything.
package helmchart
