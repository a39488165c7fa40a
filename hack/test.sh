#!/usr/bin/env bash
# Runs the tests: `hack/test.sh` runs all, `unit`, `integration` or
# `conformance` (the smoke subset of the upstream conformance suite) one kind.
# Integration tests need root and bin/regente (make build); set
# REGENTE_INTEGRATION_REQUIRED=1 to fail instead of skip when they can't run.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/env.sh
what=${1:-all}

if [[ $what == all || $what == unit ]]; then
  echo "== unit tests (go test -short ./...)"
  go test -short -count=1 ./...
fi
if [[ $what == all || $what == integration ]]; then
  echo "== integration tests (real binary, root)"
  go test -tags="${GO_TAGS},integration" -count=1 -timeout=70m -v ./tests/integration/
fi
if [[ $what == all || $what == conformance ]]; then
  echo "== conformance smoke subset (upstream e2e.test against a server and an agent)"
  hack/conformance.sh smoke
fi
