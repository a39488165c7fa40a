#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the build, the node and the tests
# need, when missing (run as root). The one list, used by README and .ci/run:
#   libc6-dev       static libc for the static cgo link
#   libseccomp-dev  static libseccomp that runc links
#   iptables, conntrack  host tools of pod networking and kube-proxy
#   nftables        nft, for kube-proxy's and flannel's nftables mode
#   iproute2        ip, which the tests use to inspect links
#   busybox-static  the test images' userland
#   util-linux, procps  mount (read-only data-dir test), pgrep/pkill, nsenter/unshare
#   postgresql, mariadb-server  the shared-datastore tests' databases (each test starts its own)
#   the shellcheck package, which lints every shell script in a test
#   gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf, libseccomp-dev:arm64/armhf
#                   make release: cgo cross builds of regente and runc
#   qemu-user-static  runs the arm64 release binary in a test
#   zstd            compresses the payload and the release download (hack/zstdcli)
#   ca-certificates  CA roots for the container image (and curl)
#   debootstrap, curl, bzip2, make  the conformance run's test images: a Debian
#                   userland, and busybox from its release tarball
set -euo pipefail
# libseccomp-dev is named with its architecture: once the foreign ones
# are installed too, dpkg -s needs to know which one is meant.
native=$(dpkg --print-architecture)
packages=(libc6-dev "libseccomp-dev:$native" iptables conntrack nftables iproute2 busybox-static util-linux procps postgresql mariadb-server
  shellcheck qemu-user-static zstd debootstrap curl bzip2 make ca-certificates gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libseccomp-dev:arm64 libseccomp-dev:armhf)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  for arch in arm64 armhf; do
    dpkg --print-foreign-architectures | grep -qx "$arch" || dpkg --add-architecture "$arch"
  done
  # A mirror caught mid-sync fails one index now and then; what the
  # install needs is usually still there, and apt-get install says if not.
  apt-get update -qq || echo "apt-get update reported errors; installing anyway" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
