# berth: build, demo, tests, benchmarks. Run as root on Debian.
GO        ?= go
BIN       := bin/berth
PROBE     := bin/probe
HELPERS   := internal/helperbin/bin
BUILDHELPER := internal/helperbin/buildbin/berth-build
CACHE     := .cache
export CGO_ENABLED := 0
GOFLAGS_BUILD := -trimpath -tags urfave_cli_no_docs -ldflags "-s -w -X main.version=$(shell git describe --always --dirty 2>/dev/null || echo dev)"
# Without the version: the helper is then the same bytes for the same
# source (internal/helperbin's test checks that it is current).
BUILDHELPER_FLAGS := -trimpath -tags urfave_cli_no_docs,berth_build -ldflags "-s -w"

# Debian packages the demo, tests, VM tests and benchmarks use (iptables
# only for podman's default network in the network bench); podman,
# containerd and the CNI plugins are the engines tests/engines drives; buildah is
# what it compares berth build with; systemd gives tests/containers a
# systemd-journald to run in a namespace.
DEB_PACKAGES := busybox-static cpio qemu-system-x86 runc crun skopeo umoci docker-registry apache2-utils \
	podman conmon buildah containerd containernetworking-plugins iproute2 man-db iptables mmdebstrap e2fsprogs xfsprogs systemd

.PHONY: all build helpers deps demo test unit integration engines vmtest bench docs install clean lint fuzz

all: build

build: $(BIN) $(PROBE)

$(BIN): helpers FORCE
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN) .

# The helper programs, embedded into berth (see internal/helperbin). The
# build helper is berth with the build commands linked in (-tags
# berth_build); it embeds the other two, so it comes after them, and is
# embedded compressed (a third of its size).
helpers: FORCE
	@for p in berth-monitor berth-init; do \
		$(GO) build -trimpath -ldflags "-s -w" -o $(HELPERS)/$$p ./cmd/$$p || exit 1; \
		sha256sum $(HELPERS)/$$p | cut -d' ' -f1 > $(HELPERS)/$$p.sha256; \
	done
	$(GO) build $(BUILDHELPER_FLAGS) -o $(BUILDHELPER) .
	sha256sum $(BUILDHELPER) | cut -d' ' -f1 > $(BUILDHELPER).sha256
	gzip -9nf $(BUILDHELPER)

$(PROBE): FORCE
	$(GO) build -trimpath -ldflags "-s -w" -o $(PROBE) ./testdata/probe

FORCE:

# deps installs what is missing; it is a no-op on a machine that has it all.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	$(GO) mod download

# Linters at pinned versions, installed from the Go module proxy into the
# git-ignored cache the first time (a version bump installs the new one).
STATICCHECK_VERSION := v0.8.2
DEADCODE_VERSION    := v0.52.0
STATICCHECK := $(CACHE)/bin/staticcheck-$(STATICCHECK_VERSION)
DEADCODE    := $(CACHE)/bin/deadcode-$(DEADCODE_VERSION)

$(STATICCHECK):
	GOBIN=$(CURDIR)/$(CACHE)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(CACHE)/bin/staticcheck $@

$(DEADCODE):
	GOBIN=$(CURDIR)/$(CACHE)/bin $(GO) install golang.org/x/tools/cmd/deadcode@$(DEADCODE_VERSION)
	mv $(CACHE)/bin/deadcode $@

# deadcode prints the functions no test or program reaches; any is a finding.
lint: $(STATICCHECK) $(DEADCODE)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags berth_build .
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags berth_build .
	@# With the build helper's tag: berth build's code is reached from it.
	@out="$$($(DEADCODE) -test -tags berth_build ./...)" || exit 1; test -z "$$out" || { echo "$$out"; echo "deadcode: unreachable functions"; exit 1; }

demo: deps build
	./testdata/demo.sh

test: deps build lint fuzz
	$(GO) test -count=1 -p 1 -timeout 40m ./...

# engines runs only the tests that drive podman, containerd and its CRI
# plugin with berth-oci (make test runs them too; the VMs leave them out).
engines: deps build
	$(GO) test -count=1 -p 1 -timeout 20m -v ./tests/engines

# fuzz runs each fuzz target of the layer unpacker and archive loaders for
# FUZZTIME on the host; go test -fuzz takes one target at a time. (The
# VM harness runs test binaries, which run only the seed corpus.) Inputs
# that find new coverage are minimized with at most 20 runs each, not for the
# default minute, or the run goes on minimizing seeds.
FUZZTIME      ?= 30s
FUZZ_TARGETS  := FuzzUnpack FuzzLoad FuzzImport
fuzz:
	@for f in $(FUZZ_TARGETS); do \
		echo "fuzz $$f for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=20x ./image || exit 1; \
	done

# CGROUP: v2, v1, systemd (systemd-v2 and systemd-v1), or empty for all four.
vmtest: deps build
	./testdata/vm/run.sh $(CGROUP)

bench: deps build
	$(GO) run ./tools/bench

# docs writes the man pages (from the command definitions, by a build of
# berth with -tags docsgen) and the shell completion scripts into bin/.
docs: build
	$(GO) build -trimpath -tags docsgen -o bin/berth-docs .
	rm -rf bin/man && bin/berth-docs bin/man
	mkdir -p bin/completion
	$(BIN) completion bash > bin/completion/berth
	$(BIN) completion zsh > bin/completion/_berth
	$(BIN) completion fish > bin/completion/berth.fish

install: build docs
	install -m 0755 $(BIN) /usr/local/bin/berth
	ln -sf berth /usr/local/bin/berth-oci
	install -d /usr/local/lib/systemd/system-generators
	ln -sf /usr/local/bin/berth /usr/local/lib/systemd/system-generators/berth-generator
	install -d /usr/local/lib/systemd/system
	install -m 0644 dist/berth-restart.service /usr/local/lib/systemd/system/berth-restart.service
	install -d /usr/local/share/man/man1 /usr/share/bash-completion/completions /usr/local/share/zsh/site-functions /usr/share/fish/vendor_completions.d
	install -m 0644 bin/man/*.1 /usr/local/share/man/man1/
	install -m 0644 bin/completion/berth /usr/share/bash-completion/completions/berth
	install -m 0644 bin/completion/_berth /usr/local/share/zsh/site-functions/_berth
	install -m 0644 bin/completion/berth.fish /usr/share/fish/vendor_completions.d/berth.fish

clean:
	rm -rf bin $(HELPERS)/berth-*
