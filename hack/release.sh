#!/usr/bin/env bash
# make release: static regente binaries for amd64, arm64 and armv7, each
# with its own payload (runc, shims, CNI plugins and system images built
# for that machine), each compressed behind a small launcher that unpacks
# it on its first run (pkg/selfextract), and their checksums, in dist/:
#   regente  regente-arm64  regente-armv7  sha256sum-<arch>.txt
# These are the names install.sh downloads. ARCHES="arm64" builds a subset.
#
# cgo (SQLite, runc's seccomp) goes through Debian's cross compilers and
# the target's static libseccomp; hack/deps.sh installs them. Each
# architecture builds in its own copy of the tree, so the host's
# pkg/payload/embedded (which `make` builds from) is never swapped under a
# build running beside it; -trimpath keeps the build cache shared.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/env.sh
arches=${ARCHES:-amd64 arm64 armv7}
dist=$(realpath -m dist)
mkdir -p "$dist"
export VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)}

for arch in $arches; do
  start=$(date +%s)
  case $arch in
    amd64) goarch=amd64 goarm="" cc=x86_64-linux-gnu-gcc suffix="" ;;
    arm64) goarch=arm64 goarm="" cc=aarch64-linux-gnu-gcc suffix=-arm64 ;;
    armv7) goarch=arm goarm=7 cc=arm-linux-gnueabihf-gcc suffix=-armv7 ;;
    *) echo "release: unknown architecture $arch: amd64, arm64 or armv7" >&2; exit 2 ;;
  esac
  command -v "$cc" >/dev/null || { echo "release: $cc is missing: run hack/deps.sh (it installs the cross compilers)" >&2; exit 1; }
  src=$(realpath -m "bin/release/src-$arch")
  rm -rf "$src" && mkdir -p "$src"
  # Tracked and new (not ignored) files: what a commit of this tree holds.
  git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src"
  echo "== release $VERSION for $arch" >&2
  (
    cd "$src"
    export GOARCH=$goarch GOARM=$goarm CC=$cc
    hack/payload.sh
    hack/build.sh
    CGO_ENABLED=0 go build -ldflags "-s -w" -o bin/regente-sfx ./cmd/regente-sfx
  )
  # The download is the launcher with regente compressed behind it
  # (pkg/selfextract); its first run unpacks regente in place.
  go run ./hack/sfxpack -launcher "$src/bin/regente-sfx" -program "$src/bin/regente" -o "$dist/regente$suffix"
  (cd "$dist" && sha256sum "regente$suffix" > "sha256sum-$arch.txt")
  rm -rf "$src"
  echo "release: $arch in $(( $(date +%s) - start ))s" >&2
done
ls -l "$dist" >&2
