#!/usr/bin/env bash
# Runs the fuzz targets with `go test -fuzz`, each for FUZZTIME (default
# 1m): `hack/fuzz.sh` runs every target (the long form, `make fuzz`),
# `hack/fuzz.sh short` the ones whose instrumented build is small, for
# FUZZTIME (10s unless set), as `make test` does.
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
# package:target
light=(pkg/config:FuzzLoad pkg/registries:FuzzParse)
heavy=(pkg/join:FuzzParseToken pkg/join:FuzzJoinRequest pkg/snapshot:FuzzVerify pkg/images:FuzzImportArchive)
case ${1:-all} in
  short) targets=("${light[@]}"); fuzztime=${FUZZTIME:-10s} ;;
  all) targets=("${light[@]}" "${heavy[@]}"); fuzztime=${FUZZTIME:-1m} ;;
  *) echo "usage: hack/fuzz.sh [short|all]" >&2; exit 2 ;;
esac
for t in "${targets[@]}"; do
  pkg=${t%%:*} name=${t##*:}
  echo "== fuzz ${name} (./${pkg}) for ${fuzztime}"
  # One worker leaves the other core to what runs beside (the background
  # release builds in make test); minimizing a new input is capped so the
  # time goes to fuzzing.
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" -fuzzminimizetime 5s -parallel 1 "./${pkg}"
done
