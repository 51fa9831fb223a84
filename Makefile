# Tapestry build, test, demo and benchmarks.
GO        ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN       := bin
TESTFLAGS ?= -timeout 20m

.PHONY: all build demo test lint unit bench clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

demo: build
	./scripts/demo.sh

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

unit:
	$(GO) test $(TESTFLAGS) ./...

test: lint build unit

bench: build
	./scripts/bench.sh

clean:
	rm -rf $(BIN)
