#!/usr/bin/env bash
# Runs the tests: `hack/test.sh` runs all, `unit`, `integration` or
# `conformance` (the smoke subset of the upstream conformance suite) one kind.
# Integration tests need root and bin/regente (make build); set
# REGENTE_INTEGRATION_REQUIRED=1 to fail instead of skip when they can't run.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/env.sh
what=${1:-all}

# Each phase's line carries the time, so that a slow run shows where it went.
phase() { echo "== $(date +%T) $*"; }

if [[ $what == all && $(id -u) == 0 ]]; then
  # A cross release build is the longest step of a cold run (about 19
  # minutes of both cores per architecture: its payload, then regente) and
  # almost all compiling, while the suites mostly wait on pods: at the
  # lowest CPU priority the build takes what the suites leave idle.
  # TestReleaseCrossBuilds, the integration suite's last test, waits for it
  # and checks what it built. make test builds armv7 only, the one that
  # differs most from the amd64 binary every other test runs (32-bit, its
  # own cross compiler and GOARM): two cold cross builds no longer fit in
  # CI's time. RELEASE_ARCHES="arm64 armv7" builds and checks both.
  release_arches=${RELEASE_ARCHES:-armv7}
  mkdir -p dist
  release_log=$(realpath dist/release-test.log)
  rm -f "$release_log" "$release_log.rc"
  phase "release builds for $release_arches, in the background at nice 19 (log $release_log)"
  # In a process group of its own, so that an early exit ends the builds too.
  # shellcheck disable=SC2016 # $1 is the inner shell's, the log path
  ARCHES="$release_arches" setsid bash -c 'nice -n 19 hack/release.sh >"$1" 2>&1; echo $? >"$1.rc"' _ "$release_log" &
  release_pid=$!
  trap 'kill -- -$release_pid 2>/dev/null || true' EXIT
  export REGENTE_RELEASE_LOG=$release_log REGENTE_RELEASE_ARCHES=$release_arches
  # The static checks too, golangci-lint and govulncheck on bin/regente
  # (which make test built): a cold run builds both tools first (about 3
  # minutes). Their verdict is read at the end.
  lint_log=$(realpath dist)/static-checks.log
  rm -f "$lint_log" "$lint_log.rc"
  phase "golangci-lint and govulncheck, in the background at nice 19 (log $lint_log)"
  # shellcheck disable=SC2016 # $1 is the inner shell's, the log path
  setsid bash -c 'nice -n 19 bash -c "hack/lint.sh && hack/vulncheck.sh" >"$1" 2>&1; echo $? >"$1.rc"' _ "$lint_log" &
  lint_pid=$!
  trap 'kill -- -$release_pid -$lint_pid 2>/dev/null || true' EXIT
fi

if [[ $what == all || $what == unit ]]; then
  phase "gofmt and go vet"
  unformatted=$(gofmt -l cmd pkg hack tests images)
  if [[ -n $unformatted ]]; then
    echo "gofmt: these files are not formatted; run gofmt -w on them:" >&2
    echo "$unformatted" >&2
    exit 1
  fi
  go vet ./...
  go vet -tags="${GO_TAGS},integration" ./tests/...
  if [[ -z ${lint_log:-} ]]; then
    phase "golangci-lint (hack/lint.sh)"
    hack/lint.sh
    if [[ -x bin/regente ]]; then
      phase "govulncheck on bin/regente (hack/vulncheck.sh)"
      hack/vulncheck.sh
    fi
  fi
  phase "unit tests (go test -short ./...)"
  go test -short -count=1 ./...
  # Our own code in a system image's module: the ingress controller in
  # hack/images/addons. CGO_ENABLED=0, as the payload builds it, so that
  # its dependencies come from that build's cache.
  (cd hack/images/addons && CGO_ENABLED=0 go vet ./ingress/ && CGO_ENABLED=0 go test -short -count=1 ./ingress/)
  phase "fuzzing, short form (hack/fuzz.sh short)"
  hack/fuzz.sh short
fi
# The kubelet's eviction thresholds are a share of the disk: a run that
# fails with pods "Evicted" shows here how much was free.
phase "free disk: $(df -h --output=avail,size,pcent . | tail -1)"
if [[ $what == all || $what == conformance ]]; then
  phase "conformance smoke subset (upstream e2e.test against a server and an agent)"
  hack/conformance.sh smoke
fi
if [[ $what == all || $what == integration ]]; then
  phase "integration tests (real binary, root)"
  go test -tags="${GO_TAGS},integration" -count=1 -timeout=80m -v ./tests/integration/
fi
if [[ -n ${lint_log:-} ]]; then
  phase "golangci-lint's and govulncheck's verdict (they ran in the background)"
  while [[ ! -f $lint_log.rc ]]; do sleep 5; done
  cat "$lint_log"
  if [[ $(cat "$lint_log.rc") != 0 ]]; then
    echo "the static checks found problems (above); run hack/lint.sh and hack/vulncheck.sh" >&2
    exit 1
  fi
fi
