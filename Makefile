# Every target delegates to a script in hack/; README lists them.
.PHONY: all build test test-unit test-integration bench clean

all: build

build:
	hack/build.sh

test: build
	hack/test.sh

test-unit:
	hack/test.sh unit

test-integration: build
	hack/test.sh integration

bench: build
	hack/bench.sh

clean:
	rm -rf bin
