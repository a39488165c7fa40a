#!/usr/bin/env bash
# Builds the payload regente embeds: the helper binaries upstream ships only
# as `package main`, from the modules pinned in hack/payload/go.mod (runc
# with seccomp, statically linked; containerd, containerd-shim-runc-v2 and
# the CNI plugins without cgo; crictl from hack/crictl/go.mod), and the
# system images (pkg/sysimages). Packs them with pkg/payload's format into
# pkg/payload/embedded/payload.tar.zst, which the binary embeds.
# Needs libseccomp-dev (static libseccomp.a) for runc.
#
# GOARCH (and GOARM, CC) in the environment build a payload for another
# machine, as hack/release.sh does; the build tools here still run on this
# one.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/env.sh
# The payload's hash names the folder it unpacks into, so the same sources
# must give the same bytes: without this, the programs whose main package
# is in this repository carry the commit and a dirty flag, and every commit
# (or a copy of the tree outside git, as make release builds in) unpacks a
# new folder.
export GOFLAGS="${GOFLAGS} -buildvcs=false"
target_arch=${GOARCH:-$(go env GOHOSTARCH)}
host_go() { env -u GOARCH -u GOARM -u CC go "$@"; }
out=$(realpath -m bin/payload)
rm -rf "$out" && mkdir -p "$out/bin" "$out/images"

(
  cd hack/payload
  runc_version=$(go list -m -f '{{.Version}}' github.com/opencontainers/runc)
  containerd_version=$(go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)
  plugins_version=$(go list -m -f '{{.Version}}' github.com/containernetworking/plugins)
  echo "building payload: runc ${runc_version}, containerd-shim-runc-v2 ${containerd_version}, CNI plugins ${plugins_version}" >&2

  CGO_ENABLED=1 go build -tags "${GO_TAGS},seccomp,urfave_cli_no_docs" \
    -ldflags "-s -w -X main.version=${runc_version#v} -linkmode=external -extldflags=-static" \
    -o "$out/bin/runc" github.com/opencontainers/runc

  # containerd runs as its own small binary rather than a re-exec of
  # regente: a re-exec would map all of regente's pages and run every
  # Kubernetes package's init in a second long-lived process.
  # containerd is our main (hack/payload/containerd) with the plugins a
  # node uses; the shim is upstream's.
  for cmd in ./containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2; do
    CGO_ENABLED=0 go build -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=${containerd_version}" \
      -o "$out/bin/$(basename "$cmd")" "$cmd"
  done

  for p in main/bridge ipam/host-local main/loopback meta/portmap meta/bandwidth meta/firewall; do
    CGO_ENABLED=0 go build -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=${plugins_version}" \
      -o "$out/bin/$(basename "$p")" "github.com/containernetworking/plugins/plugins/$p"
  done
)
# crictl lives in its own module: cri-tools pins an older cri-api than
# containerd, and joining their graphs would build it against a cri-api it
# was never tested with.
(
  cd hack/crictl
  crictl_version=$(go list -m -f '{{.Version}}' sigs.k8s.io/cri-tools)
  CGO_ENABLED=0 go build -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${crictl_version}" \
    -o "$out/bin/crictl" sigs.k8s.io/cri-tools/cmd/crictl
)

# The system images (pkg/sysimages), each one static program in one
# layer: our own programs (images/<name>), and upstream programs linked from
# a module of their own (hack/images/<name>), kept apart from regente's
# dependency graph. A program several images share (hack/images/addons:
# CoreDNS and metrics-server) goes into each of them as the same layer.
programs=()
for dir in images/*/; do
  programs+=("$(basename "$dir")")
  CGO_ENABLED=0 go build -ldflags "-s -w" -o "$out/$(basename "$dir")" "./$dir"
done
for dir in hack/images/*/; do
  program=$(basename "$dir")
  programs+=("$program")
  (
    cd "$dir"
    echo "building system image program ${program}" >&2
    # A module whose program is upstream's own package main names it in
    # main-package; the others hold a small main of ours.
    pkg=.
    [[ -f main-package ]] && pkg=$(cat main-package)
    CGO_ENABLED=0 go build -ldflags "-s -w" -o "$out/$program" "$pkg"
  )
done
host_go build -o "$out/imagebuild" ./hack/imagebuild
"$out/imagebuild" -list | while read -r image program; do
  "$out/imagebuild" -arch "$target_arch" -system "$image" -o "$out/images/$image.tar" "$out/$program"
done
for program in "${programs[@]}" imagebuild; do
  rm "$out/$program"
done

host_go run ./hack/payloadpack -dir "$out" -o pkg/payload/embedded/payload.tar.zst
ls -l pkg/payload/embedded/payload.tar.zst >&2
