#!/usr/bin/env bash
# Runs a command with the host's /etc, /usr/local, /var/lib and /var/log
# behind overlays whose upper dirs are <state-dir>/upper/<dir>, and a fresh
# /run: whatever the command creates or deletes there lands in the upper
# dirs (a deletion as a whiteout), the host is untouched, and the upper
# dirs outlive the namespace for the caller to read. Meant to run inside
#   unshare --mount --propagation private --pid --fork --mount-proc --net --uts
# so the command's pkill, ip link and iptables see only its own namespaces.
#
#   throwaway-root.sh <state-dir> <command> [args...]
#
# systemd and openrc cannot run here; <state-dir>/fakebin (put first on
# PATH) may hold stand-ins for systemctl, rc-update and openrc-run that log
# their calls.
set -euo pipefail
state=$1
shift
for dir in /etc /usr/local /var/lib /var/log; do
  mkdir -p "$state/upper$dir" "$state/work$dir"
  mount -t overlay throwaway -o "lowerdir=$dir,upperdir=$state/upper$dir,workdir=$state/work$dir" "$dir"
done
mount -t tmpfs throwaway /run
ip link set lo up
export PATH="$state/fakebin:$PATH"
"$@"
