#!/usr/bin/env bash
# govulncheck on bin/regente: every module and the Go release linked into
# the binary, against Go's vulnerability database. This machine reaches no
# database server, so the database is built from its source module
# (golang.org/x/vulndb, the OSV files it publishes from) at the pinned
# version, fetched through the module proxy; bump VULNDB to check against
# newer reports. Findings that cannot be fixed by an upgrade are listed,
# each with why, in the README ("Known vulnerabilities"); any other
# finding fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/env.sh
VULN=${VULN:-v1.9.0}
VULNDB=${VULNDB:-v0.0.0-20261105234957-e22db6528018}
bin=${1:-bin/regente}
[[ -x $bin ]] || { echo "vulncheck: no $bin: run make first" >&2; exit 1; }
db=$(go env GOCACHE)/regente-vulndb-$VULNDB
if [[ ! -f $db/index/db.json ]]; then
  echo "vulncheck: building the vulnerability database from golang.org/x/vulndb@$VULNDB (once)"
  src=$(GOFLAGS='' go mod download -json "golang.org/x/vulndb@$VULNDB" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  rm -rf "$db.partial"
  GOFLAGS='' CGO_ENABLED=0 go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB" -vulns "$src/data/osv" -out "$db.partial"
  mv "$db.partial" "$db"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# The text report lists as "Vulnerability #N: GO-..." only what the binary
# holds vulnerable symbols of, not what is merely in a module it lists.
GOFLAGS='' CGO_ENABLED=0 go run "golang.org/x/vuln/cmd/govulncheck@$VULN" -db "file://$db" -mode binary "$bin" >"$out" || true
grep -q "^Your code is affected by\|^No vulnerabilities found" "$out" || { cat "$out" >&2; echo "vulncheck: govulncheck did not finish" >&2; exit 1; }
found=$(sed -n 's/^Vulnerability #[0-9]*: \(GO-[0-9]*-[0-9]*\)$/\1/p' "$out" | sort -u)
accepted=$(sed -n 's/^| \(GO-[0-9]*-[0-9]*\) |.*/\1/p' README.md | sort -u)
unexplained=$(comm -23 <(echo "$found" | sed '/^$/d') <(echo "$accepted" | sed '/^$/d'))
echo "vulncheck: $(echo "$found" | sed '/^$/d' | wc -l) findings in $bin, $(echo "$accepted" | sed '/^$/d' | wc -l) explained in README"
if [[ -n $unexplained ]]; then
  echo "vulncheck: these have no entry in README's \"Known vulnerabilities\"; upgrade the module, or explain why not:" >&2
  echo "$unexplained" >&2
  cat "$out" >&2
  exit 1
fi
echo "vulncheck: clean"
