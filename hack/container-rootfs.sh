#!/usr/bin/env bash
# Assembles the filesystem of regente's container image in
# bin/container-rootfs, for the Dockerfile (FROM scratch: nothing is
# pulled). Besides bin/regente it holds the host tools the node runs that
# regente does not carry, taken from this machine's Debian packages with
# the shared libraries they load: busybox (sh, mount, modprobe and the
# rest of a shell's userland), iptables and its extensions, nft, conntrack
# and ip. Needs bin/regente (make) and hack/deps.sh's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(realpath -m bin/container-rootfs)
[[ -x bin/regente ]] || { echo "container-rootfs: bin/regente is missing: run make first" >&2; exit 1; }
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/lib,usr/lib64,etc,tmp,run,proc,sys,dev,var/lib/regente,var/log}
# Merged /usr, as Debian's: libraries found through /lib (as ldd names
# them) and through /usr/lib (where iptables looks for its extensions)
# are the same files.
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp"

cp bin/regente "$root/bin/regente"
for link in kubectl crictl ctr; do ln -s regente "$root/bin/$link"; done

busybox=$(command -v busybox)
cp "$busybox" "$root/bin/busybox"
# A link per applet, except where a real tool below takes the name.
for applet in $("$busybox" --list); do
  [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
done

# copy_with_libs copies a dynamically linked program, or a library, with
# every shared library it loads, to the same paths under the root.
copy_with_libs() {
  local file=$1
  mkdir -p "$root$(dirname "$file")"
  cp -L "$file" "$root$file"
  ldd "$file" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
    if [[ ! -e "$root$lib" ]]; then
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    fi
  done
}

tools=(/usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi /usr/sbin/nft /usr/sbin/conntrack /usr/bin/ip)
for tool in "${tools[@]}"; do
  [[ -x $tool ]] || { echo "container-rootfs: $tool is missing: run hack/deps.sh" >&2; exit 1; }
  rm -f "$root/bin/$(basename "$tool")"
  copy_with_libs "$tool"
done
# The names the node calls, in nft mode as Debian's alternatives default.
for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf xtables-nft-multi "$root/usr/sbin/$name"
  rm -f "$root/bin/$name"
done
for name in iptables-legacy iptables-legacy-save iptables-legacy-restore ip6tables-legacy ip6tables-legacy-save ip6tables-legacy-restore; do
  ln -sf xtables-legacy-multi "$root/usr/sbin/$name"
done
rm -f "$root/bin/ip"
# iptables loads its match and target extensions at run time.
xtables=$(dirname "$(ldd /usr/sbin/xtables-nft-multi | grep -o '/[^ ]*libxtables[^ ]*')")/xtables
for ext in "$xtables"/*.so; do copy_with_libs "$ext"; done

cat > "$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > "$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo "hosts: files dns" > "$root/etc/nsswitch.conf"
# containerd's CRI keeps pod netns mounts under /var/run/netns: the same
# /run the container is given.
ln -s ../run "$root/var/run"
# The CA roots, for pulls of images regente does not carry.
roots=/etc/ssl/certs/ca-certificates.crt
[[ -f $roots ]] || { echo "container-rootfs: $roots is missing: run hack/deps.sh (ca-certificates)" >&2; exit 1; }
install -D -m 0644 "$roots" "$root$roots"
touch "$root/etc/hosts" "$root/etc/resolv.conf"
du -sh "$root" >&2
