# Every target delegates to a script in hack/; README lists them.
.PHONY: all build payload release test test-unit test-integration bench clean

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

bench: build
	hack/bench.sh

clean:
	rm -rf bin dist
