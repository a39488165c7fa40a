#!/usr/bin/env bash
# Runs the benchmark against bin/regente and prints a table (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/env.sh
go run ./hack/bench -bin bin/regente "$@"
