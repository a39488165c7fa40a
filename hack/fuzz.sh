#!/usr/bin/env bash
# Runs the fuzz targets with `go test -fuzz`, each for FUZZTIME (default
# 1m): `hack/fuzz.sh` runs every target (the long form, `make fuzz`),
# `hack/fuzz.sh short` the ones whose instrumented build is small, for
# a few seconds' executions each (FUZZTIME overrides), as `make test` does.
#
# Every target's seeds and its corpus in testdata/fuzz run as plain tests
# in `go test -short ./...` too. A fuzzing build instruments every package
# the target imports: those that import client-go, containerd or etcd
# build for minutes from a cold cache, which is why the short form leaves
# them to the long one. A crash is written to the package's
# testdata/fuzz/<target>/: commit it with the fix, and it stays a
# regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/env.sh
# package:target:executions in the short form. The short form counts
# executions rather than time: with a duration, Go 1.26's fuzz coordinator
# can fail a target with a bare "context deadline exceeded" when a starved
# worker misses the deadline (go.dev/issue/75804, fixed in Go 1.27), which
# a cold CI, building beside it, is.
light=(pkg/config:FuzzLoad:5000x pkg/registries:FuzzParse:10000x)
heavy=(pkg/join:FuzzParseToken pkg/join:FuzzJoinRequest pkg/snapshot:FuzzVerify pkg/images:FuzzImportArchive)
case ${1:-all} in
  short) targets=("${light[@]}") ;;
  all) targets=("${light[@]%:*}" "${heavy[@]}") ;;
  *) echo "usage: hack/fuzz.sh [short|all]" >&2; exit 2 ;;
esac
for t in "${targets[@]}"; do
  IFS=: read -r pkg name count <<<"$t"
  fuzztime=${FUZZTIME:-${count:-1m}}
  echo "== fuzz ${name} (./${pkg}) for ${fuzztime}"
  # One worker leaves the other core to what runs beside (the background
  # release builds in make test); minimizing a new input is capped so the
  # time goes to fuzzing.
  log=$(mktemp)
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" -fuzzminimizetime 1000x -parallel 1 "./${pkg}" 2>&1 | tee "$log"; then
    rm -f "$log"; continue
  fi
  # The coordinator's race (above) fails a target having found nothing:
  # no input written, only the deadline. Replaying the corpus tells it
  # apart from a real finding, which always writes its input.
  if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log" &&
    go test -run "^${name}\$" "./${pkg}" >/dev/null; then
    echo "== ${name}: stopped at the deadline with nothing found (go.dev/issue/75804); its corpus replays clean"
    rm -f "$log"; continue
  fi
  rm -f "$log"; exit 1
done
