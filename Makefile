# Tapestry build, test, demo and benchmarks.
GO        ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN       := bin
TESTFLAGS ?= -timeout 20m
# The version the binaries print (--version): the git tag or commit.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X main.version=$(VERSION)

# make install: DESTDIR-aware, paths of the FHS under PREFIX.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
STATEDIR    ?= /var/lib/tapestry
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d

.PHONY: all build man install demo test lint unit bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# Manual pages: tapestry(1) and one page per command from the command tree,
# tapestryd(8) from the daemon's flags, ndmpcopy(1) from dist/man.
man: build
	rm -rf $(BIN)/man
	$(GO) run ./internal/cli/genman -out $(BIN)/man/man1 -version "$(VERSION)"
	mkdir -p $(BIN)/man/man8
	$(BIN)/tapestryd --man-page >$(BIN)/man/man8/tapestryd.8
	cp dist/man/ndmpcopy.1 $(BIN)/man/man1/

install: build man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 $(BIN)/tapestry $(BIN)/ndmpcopy $(DESTDIR)$(BINDIR)/
	install -m 0755 $(BIN)/tapestryd $(DESTDIR)$(SBINDIR)/
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@STATEDIR@|$(STATEDIR)|g' dist/tapestryd.service.in \
		>$(DESTDIR)$(UNITDIR)/tapestryd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/tapestryd.service
	install -m 0644 $(BIN)/man/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(BIN)/man/man8/*.8 $(DESTDIR)$(MANDIR)/man8/
	$(BIN)/tapestry completion bash >$(DESTDIR)$(BASHCOMPDIR)/tapestry
	$(BIN)/tapestry completion zsh >$(DESTDIR)$(ZSHCOMPDIR)/_tapestry
	$(BIN)/tapestry completion fish >$(DESTDIR)$(FISHCOMPDIR)/tapestry.fish

demo: build
	./scripts/demo.sh

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) run ./scripts/funclen -max 150 internal/engine

unit:
	$(GO) test $(TESTFLAGS) ./...

test: lint build unit

bench: build
	./scripts/bench.sh

clean:
	rm -rf $(BIN)
