#!/usr/bin/env bash
# Builds bin/regente for this machine, statically linked, with the version
# variables upstream components read set from go.mod, plus the bin/kubectl
# symlink.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/env.sh

k8s_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)   # e.g. v1.37.2
k8s_major=$(echo "${k8s_version#v}" | cut -d. -f1)
k8s_minor=$(echo "${k8s_version#v}" | cut -d. -f2)
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)}
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
commit=$(git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)

ldflags="-s -w -X regente.io/regente/pkg/version.Version=${version}"
# Without these every upstream component reports v0.0.0-master and
# `kubectl version` fails.
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X ${pkg}.gitVersion=${k8s_version} -X ${pkg}.gitMajor=${k8s_major} -X ${pkg}.gitMinor=${k8s_minor}"
  ldflags+=" -X ${pkg}.gitCommit=${commit} -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${build_date}"
done
if [[ ${GOARCH:-} == arm ]]; then
  # GNU ld (binutils 2.40) drops the Thumb bit from glibc's IRELATIVE
  # resolvers once the text is this large, and the static armv7 binary
  # dies in glibc's startup; gold links it right.
  ldflags+=" -linkmode=external '-extldflags=-static -fuse-ld=gold'"
else
  ldflags+=" -linkmode=external -extldflags=-static"
fi

mkdir -p bin
echo "building bin/regente ${version} (kubernetes ${k8s_version}); a cold build takes ~12 minutes on 2 cores" >&2
go build -ldflags "${ldflags}" -o bin/regente ./cmd/regente
ln -sf regente bin/kubectl
ls -l bin/regente >&2
