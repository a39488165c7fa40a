# Every target delegates to a script in hack/; README lists them.
.PHONY: all build payload release test test-unit test-integration fuzz lint vulncheck conformance conformance-smoke bench bench-scale clean

all: build

# The binary embeds the payload (runc, shim, CNI plugins, pause image).
build: payload
	hack/build.sh

payload:
	hack/payload.sh

# Static binaries for amd64, arm64 and armv7 with checksums, in dist/.
release:
	hack/release.sh

test: build
	hack/test.sh

test-unit:
	hack/test.sh unit

test-integration: build
	hack/test.sh integration

# Every fuzz target for FUZZTIME (1m) each; make test runs the short form.
fuzz:
	hack/fuzz.sh

# golangci-lint with .golangci.yml; make test runs it.
lint:
	hack/lint.sh

# govulncheck on bin/regente; make test runs it.
vulncheck: build
	hack/vulncheck.sh

bench: build
	hack/bench.sh

# The scale bench: a control plane per datastore grown to 100, 300 and
# 1,000 nodes simulated by kwok (hack/kwok/go.mod), 30 pods each, with
# churn. Takes hours at its defaults; BENCH_SCALE_ARGS narrows it.
bench-scale: build
	cd hack/kwok && go build -o ../../bin/kwok sigs.k8s.io/kwok/cmd/kwok
	hack/bench.sh -only scale $(BENCH_SCALE_ARGS)

# The upstream conformance suite on a server and an agent (root; hours).
conformance: build
	hack/conformance.sh

# The smoke subset of it that CI runs (root; ~15 min cold, most of it building).
conformance-smoke: build
	hack/conformance.sh smoke

clean:
	rm -rf bin dist
