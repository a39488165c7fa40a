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
set -euo pipefail
packages=(libc6-dev libseccomp-dev iptables conntrack nftables iproute2 busybox-static util-linux procps postgresql mariadb-server)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
