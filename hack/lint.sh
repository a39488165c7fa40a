#!/usr/bin/env bash
# golangci-lint at the pinned version, with .golangci.yml: errcheck,
# gochecknoinits, the rule that components do not import pkg/config, and
# golangci-lint's standard set. The binary is built once from the module
# proxy and kept in GOPATH/bin under its version.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/env.sh
version=v2.15.0
bin=$(go env GOPATH)/bin/golangci-lint-$version
if [[ ! -x $bin ]]; then
  echo "lint: building golangci-lint $version (once)"
  tmp=$(mktemp -d)
  # Its own build: none of our tags or cgo settings.
  GOFLAGS='' CGO_ENABLED=0 GOBIN=$tmp go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
  mkdir -p "$(dirname "$bin")"
  mv "$tmp/golangci-lint" "$bin"
  rmdir "$tmp"
fi
"$bin" run ./...
echo "lint: clean"
