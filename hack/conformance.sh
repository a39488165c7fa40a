#!/usr/bin/env bash
# make conformance / make conformance-smoke: builds the upstream
# conformance suite of the pinned Kubernetes release and what its test
# images are made of, from the modules pinned in hack/conformance/go.mod
# and Debian packages (a debootstrap rootfs, busybox-static), then runs
# hack/conformance/harness, which builds the images, starts a regente
# server and agent in network namespaces and runs the specs. Needs root,
# bin/regente (make) and hack/deps.sh's packages.
#
#   hack/conformance.sh            every [Conformance] spec: the default set in parallel, then [Serial]
#   hack/conformance.sh smoke      the specs of hack/conformance/smoke.txt (CI)
#   hack/conformance.sh build      only build the inputs
# Results (JUnit, logs, summary.md): hack/conformance/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/env.sh
mode=${1:-full}
out=$(realpath -m bin/conformance)
mkdir -p "$out"
[[ -x bin/regente ]] || { echo "conformance: bin/regente is missing: run make first" >&2; exit 1; }
begin=$(date +%s)

k8s_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
k8s_major=$(echo "${k8s_version#v}" | cut -d. -f1)
k8s_minor=$(echo "${k8s_version#v}" | cut -d. -f2)
version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X ${pkg}.gitVersion=${k8s_version} -X ${pkg}.gitMajor=${k8s_major} -X ${pkg}.gitMinor=${k8s_minor} -X ${pkg}.gitTreeState=clean"
done
# The same cgo settings as regente's build, so the shared packages come
# from the build cache; linked statically, since the images have no libc
# of their own or another one.
static="-s -w -linkmode=external -extldflags=-static"
echo "== building e2e.test, ginkgo and the test images' programs (${k8s_version}); cold: ~10 minutes" >&2
(
  cd hack/conformance
  go test -c -ldflags "-s -w ${version_flags}" -o "$out/e2e.test" k8s.io/kubernetes/test/e2e
  go build -ldflags "-s -w" -o "$out/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
  agnhost_version=$(cat "$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)/test/images/agnhost/VERSION")
  go build -ldflags "${static} -X main.Version=${agnhost_version}" -o "$out/agnhost" k8s.io/kubernetes/test/images/agnhost
  go build -ldflags "${static}" -o "$out/nnp" k8s.io/kubernetes/test/images/nonewprivs
  go build -ldflags "${static} ${version_flags}" -o "$out/sample-apiserver" k8s.io/sample-apiserver
  go build -ldflags "${static}" -o "$out/etcd" ./etcd
  go build -o "$out/harness" ./harness
)
CGO_ENABLED=0 go build -ldflags "-s -w" -o "$out/pause" ./images/pause

# This machine's Debian mirror, as apt is configured (one-line or deb822
# sources): the test images' Debian parts come from it.
debian_mirror() {
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE '^(URIs:|deb) +https?://[^ ]+' | grep -v security | head -n1 | awk '{print $2}' || true)
  [[ -n $m ]] || { echo "conformance: no Debian mirror in /etc/apt/sources*: the test images need one" >&2; return 1; }
  echo "${m%/}"
}

# A Debian userland for agnhost, nginx and glibc-dns-testing, from this
# machine's own Debian mirror and release.
if [[ ! -f $out/rootfs/.complete ]]; then
  source /etc/os-release
  mirror=$(debian_mirror)
  echo "== debootstrap ${VERSION_CODENAME} from ${mirror} into $out/rootfs (first run only; ~3 minutes)" >&2
  rm -rf "$out/rootfs"
  debootstrap --variant=minbase --include=bash,dnsutils,curl,wget,netcat-openbsd,iproute2,procps,nginx,ca-certificates \
    "${VERSION_CODENAME}" "$out/rootfs" "$mirror" > "$out/debootstrap.log" 2>&1 \
    || { tail -20 "$out/debootstrap.log" >&2; exit 1; }
  touch "$out/rootfs/.complete"
fi
# busybox as upstream's busybox image has it: the upstream release built
# with its defconfig, static. Debian's busybox-static drops environment
# variables whose names are not shell identifiers (a Debian patch for its
# installer), which upstream keeps and two ConfigMap/Secret specs check.
# The tarball is upstream's, as Debian's mirror keeps it, checked here.
busybox_version=1.37.0
busybox_sha256=3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4
if [[ ! -x $out/busybox ]]; then
  mirror=$(debian_mirror)
  echo "== building busybox ${busybox_version} from its release tarball" >&2
  rm -rf "$out/busybox-src" && mkdir -p "$out/busybox-src"
  curl -fsSL -o "$out/busybox.tar.bz2" "${mirror}/pool/main/b/busybox/busybox_${busybox_version}.orig.tar.bz2"
  echo "${busybox_sha256}  $out/busybox.tar.bz2" | sha256sum -c --quiet
  tar -xjf "$out/busybox.tar.bz2" -C "$out/busybox-src" --strip-components=1
  (
    cd "$out/busybox-src"
    make defconfig > /dev/null
    # Static, as the image has no libc; tc does not build against newer
    # kernel headers, and no spec runs it.
    sed -i -e 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/' -e 's/^CONFIG_TC=y/# CONFIG_TC is not set/' .config
    make -j"$(nproc)" busybox > "$out/busybox-build.log" 2>&1 || { tail -20 "$out/busybox-build.log" >&2; exit 1; }
  )
  cp "$out/busybox-src/busybox" "$out/busybox"
fi
echo "conformance: inputs built in $(( $(date +%s) - begin ))s" >&2
[[ $mode == build ]] && exit 0

images_src="$(cd hack/conformance && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/test/images"
args=(-bin bin/regente -e2e "$out/e2e.test" -ginkgo "$out/ginkgo" -kubectl bin/kubectl -work "$out/work"
  -rootfs "$out/rootfs" -busybox "$out/busybox" -agnhost "$out/agnhost" -nnp "$out/nnp"
  -sample-apiserver "$out/sample-apiserver" -etcd "$out/etcd" -pause "$out/pause" -images-src "$images_src")
case $mode in
  smoke) args+=(-smoke hack/conformance/smoke.txt -procs 3 -timeout 40m) ;;
  full) args+=(-procs 6) ;;
  *) echo "conformance: unknown mode $mode: full, smoke or build" >&2; exit 2 ;;
esac
"$out/harness" "${args[@]}"
