# krakend-kafka: build, test and run. Heavy caches live under $(CACHE), never in the checkout.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

CACHE ?= $(HOME)/.cache/krakend-kafka
export CARGO_TARGET_DIR ?= $(CACHE)/target
SERVICES := $(CURDIR)/tests/services/services.sh
BUILD := $(CURDIR)/build
LIB := $(CARGO_TARGET_DIR)/release/libkrakend_kafka.a
PLUGIN := $(BUILD)/plugins/krakend-kafka.so
GATEWAY := $(BUILD)/krakend
AWS_SIGNER := $(BUILD)/msk-iam-signer
# Go loads a plugin only into a host built by the same Go release with the same -trimpath setting (and
# the same version of every module both hold), on a compatible glibc. KrakenD CE's releases are built
# with cgo and without -trimpath, and so is everything here: `make plugin GO=/path/to/go1.25.12/bin/go`
# builds for KrakenD CE 2.13.x, and `make plugin-check KRAKEND=/path/to/krakend` says whether it loads.
GO ?= go
# A path given as GO is made absolute: the recipes run go from the module's folder.
GO_BIN = $(if $(findstring /,$(GO)),$(abspath $(GO)),$(GO))
GO_BUILD_FLAGS ?=
# GOSUMDB is off because the checksum database cannot be reached from the build machines; go.sum still
# pins every module's hash. GOTOOLCHAIN=local: the toolchain is $(GO), never one go.mod asks for.
GO_ENV := GOTOOLCHAIN=local GOFLAGS=-modcacherw GOMODCACHE=$(CACHE)/gomod GOSUMDB=off CGO_ENABLED=1
GOCMD = $(GO_ENV) $(GO_BIN)
GO_BUILD = $(GOCMD) build $(GO_BUILD_FLAGS)
# No symbol table or DWARF in the plugin (it is found through its dynamic symbols, which stay; the
# loader does not compare these).
GO_STRIP := -s -w
# Starts the test services, runs the rest of the line with their environment, and stops them again.
WITH_TEST_SERVICES = $(SERVICES) start test && trap '$(SERVICES) stop test' EXIT && eval "$$($(SERVICES) env test)" &&

.PHONY: build header plugin krakend service run-service aws-signer image-context image image-test service-image-context service-image service-image-test bench test unit integration go-test e2e run fmt-check services-install leaks fuzz

## build: the Rust core, as libkrakend_kafka.so (C callers) and .a (the Go plugin), in release mode
build:
	cargo build --release --lib

# The core's own symbols (Rust, librdkafka, OpenSSL: two thirds of the plugin's) stay out of its dynamic
# symbol table: only Go calls them, and a smaller table is less for the loader to read into memory. Kept
# out of it, what the plugin never calls can go: --gc-sections drops the code no export reaches (most of
# it the AWS SDK's other Glue operations), 41.6 -> 19.0 MB of code and 16 MB less resident.
PLUGIN_LDFLAGS := -Wl,--gc-sections -Wl,--exclude-libs,ALL $(LIB)

# Go's build cache does not look into the archive named in CGO_LDFLAGS, and would keep a plugin linked
# with an older core: the core's digest as the plugin's build id makes every new core a new link.
## plugin: the KrakenD plugin, one .so with the Rust core linked in, into build/plugins/
plugin: build
	cd go-shim && CGO_LDFLAGS="$(PLUGIN_LDFLAGS)" $(GO_BUILD) -ldflags="$(GO_STRIP) -B 0x$$(sha1sum $(LIB) | cut -c1-40)" -buildmode=plugin -o $(PLUGIN) .

PLUGIN_CHECK := $(BUILD)/plugin-check
KRAKEND ?= $(GATEWAY)

.PHONY: plugin-check plugin-check-bin plugin-variants

plugin-check-bin:
	cd go-shim && $(GO_BUILD) -o $(PLUGIN_CHECK) ./cmd/plugin-check

## plugin-check: whether build/plugins/krakend-kafka.so loads into KRAKEND=/path/to/krakend (default: the
## gateway of build/), and if not what differs and how to rebuild; it never rebuilds the plugin itself
plugin-check: plugin-check-bin
	@test -f $(PLUGIN) || { echo "no plugin at $(PLUGIN): run make plugin first"; exit 2; }
	$(PLUGIN_CHECK) -krakend $(KRAKEND) -plugin $(PLUGIN)

# The test rig's plugins that a gateway of build/ must refuse (tests/plugin_build.rs): one built with
# -trimpath, one built by the one other Go release these machines may use (fetched by the go command
# into the module cache, as GOTOOLCHAIN does; a toolchain is verified against the checksum database
# even where modules are not, so this one step needs it).
VARIANTS := $(BUILD)/variants
OTHER_GO_RELEASE := go1.27.3
plugin-variants:
	$(MAKE) --no-print-directory plugin PLUGIN=$(VARIANTS)/trimpath/krakend-kafka.so GO_BUILD_FLAGS=-trimpath
	other="$$(GOTOOLCHAIN=$(OTHER_GO_RELEASE) GOFLAGS=-modcacherw GOMODCACHE=$(CACHE)/gomod $(GO_BIN) env GOROOT)" && \
	$(MAKE) --no-print-directory plugin PLUGIN=$(VARIANTS)/$(OTHER_GO_RELEASE)/krakend-kafka.so GO="$$other/bin/go"

# krakend/gateway/go.mod is the one place lura's version is pinned; the binary reports it (X-Krakend).
LURA_VERSION = $(shell awk '$$1 == "github.com/luraproject/lura/v2" {print $$2}' krakend/gateway/go.mod)

# As KrakenD CE's release sets them: `krakend version` prints the glibc the gateway was built on.
GLIBC_VERSION = $(shell . /etc/os-release && echo "GLIBC-$$(ldd --version | awk 'NR == 1 {print $$NF}')_($$ID-$$VERSION_ID)")
GATEWAY_LDFLAGS = -X github.com/luraproject/lura/v2/core.KrakendVersion=$(LURA_VERSION) -X github.com/luraproject/lura/v2/core.GlibcVersion=$(GLIBC_VERSION)
KRAKEND_RIG := $(BUILD)/krakend-rig

.PHONY: krakend-rig config-check

# The product's gateway is CE's build stripped (50 MB, not 71 MB, in the image): the loader compares no
# symbol tables, and tests/plugin_build.rs holds the plugin against both gateways.
## krakend: the gateway binary (the product's, the one the image holds), into build/
krakend:
	cd krakend/gateway && $(GO_BUILD) -ldflags="$(GO_STRIP) $(GATEWAY_LDFLAGS)" -o $(GATEWAY) ./cmd/krakend

## krakend-rig: the test rig's gateway: the product's plus the bench's "static" client and CE-style
## pubsub publisher, and Go's profiles for the fault suite (tests/bench/gateway), into build/; never shipped
krakend-rig:
	cd tests/bench/gateway && $(GO_BUILD) -ldflags="$(GATEWAY_LDFLAGS)" -o $(KRAKEND_RIG) .

# AWS's Go SigV4 signer, the reference the MSK IAM token test compares with.
aws-signer:
	cd tests/msk-iam-signer && $(GO_BUILD) -o $(AWS_SIGNER) .

## header: regenerate include/krakend_kafka.h from src/ffi.rs
header:
	cargo build --release --lib --message-format=json | grep -o '"out_dir":"[^"]*"' | cut -d'"' -f4 | \
		while read -r dir; do if [ -f "$$dir/krakend_kafka.h" ]; then cp "$$dir/krakend_kafka.h" include/; fi; done

## unit: the Rust unit tests (no services needed)
unit:
	cargo test --release --lib

## integration: the Rust core against a real Kafka broker and the Glue emulator
integration:
	$(WITH_TEST_SERVICES) cargo test --release --test publish -- --include-ignored

## go-test: the Go shim's tests, race-checked, with the core linked in, on the test services
go-test: build
	cd go-shim && $(GOCMD) vet ./... && $(WITH_TEST_SERVICES) $(SERVICES) example test && CGO_LDFLAGS="$(LIB)" $(GOCMD) test -race -count=1 ./...

# Runs cargo test with the gateway (built in build/) up on the test services.
WITH_GATEWAY = $(WITH_TEST_SERVICES) tests/e2e/gateway.sh tests/e2e/krakend.json $(CACHE)/state-test/krakend.log -- \
	env KK_KRAKEND_BIN=$(GATEWAY) KK_PLUGIN_CHECK_BIN=$(PLUGIN_CHECK) KK_PLUGIN_VARIANTS=$(VARIANTS) KK_GO_VERSION=$$($(GOCMD) env GOVERSION) KK_KRAKEND_RIG_BIN=$(KRAKEND_RIG) KK_PLUGIN=$(PLUGIN) KK_AWS_SIGNER_BIN=$(AWS_SIGNER) cargo test --release

## e2e: the gateway tests alone: HTTP through KrakenD and the plugin to Kafka
e2e: plugin krakend
	$(WITH_GATEWAY) --test e2e -- --include-ignored

## leaks: the core's unit and integration tests under valgrind (no block lost outside the rdkafka crate's
## one, tests/leaks/rdkafka.supp), then the gateway's memory over 100,000 publishes (tests/memory.rs)
leaks: plugin krakend-rig
	command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
	$(WITH_TEST_SERVICES) tests/leaks/valgrind.sh --lib --test publish && \
	KK_KRAKEND_RIG_BIN=$(KRAKEND_RIG) KK_PLUGIN=$(PLUGIN) cargo test --release --test memory -- --include-ignored --nocapture

## fmt-check: Rust and Go sources are formatted
fmt-check:
	cargo fmt --check
	test -z "$$(gofmt -l go-shim krakend tests)" || { gofmt -l go-shim krakend tests; exit 1; }

# Every gateway config of the repository (examples, test and bench configs; tests/bench/service.json is
# the service's own, not KrakenD's, and tests/bench/orders.schema.json a topic's JSON Schema).
CONFIGS = $(filter-out tests/bench/service.json tests/bench/orders.schema.json,$(wildcard krakend/*.json krakend/service/krakend.json tests/e2e/*.json tests/bench/*.json))

## config-check: every gateway config validates against KrakenD's published v2.13 schema (tests/config/)
config-check:
	$(SERVICES) install
	venv="$${KK_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/krakend-kafka}/venv-$$(sha256sum tests/services/requirements.txt | cut -c1-12)" && \
	"$$venv/bin/python" tests/config/validate.py tests/config/krakend-v2.13.schema.json $(CONFIGS)

## test: every test of the project: Rust unit, integration and end-to-end tests, Go tests
test: fmt-check config-check plugin krakend krakend-rig aws-signer plugin-check-bin plugin-variants go-test
	$(WITH_GATEWAY) -- --include-ignored

services-install:
	$(SERVICES) install

# The local stack (services, example topics), the commands that publish to port $(1), then $(2) in the
# foreground; Ctrl-C stops everything it started.
define run-stack
	@$(SERVICES) start run && trap '$(SERVICES) stop run' EXIT && eval "$$($(SERVICES) env run)" && \
	$(SERVICES) example run && \
	printf '\nPublish:\n  %s\nPublish a batch:\n  %s\nSee the records:\n  %s\nCount them in Prometheus:\n  %s\n\n' \
	  "curl -si http://127.0.0.1:$(1)/v1/event/example-events -H 'Message-Key: k1' -H 'Message-Headers: source=readme,trace-id=abc-1' -d '{\"some_message\":\"hello\"}'" \
	  "curl -si http://127.0.0.1:$(1)/v1/batch/example-events -d '{\"records\":[{\"key\":\"k1\",\"value\":{\"some_message\":\"one\"}},{\"key\":\"k2\",\"headers\":{\"source\":\"readme\"},\"value\":{\"some_message\":\"two\"}}]}'" \
	  "$(SERVICES) consume run example-events" \
	  "http://127.0.0.1:9090/graph?g0.expr=krakend_kafka_produced_records_total" && \
	$(2)
endef

## run: local Kafka, the Glue emulator with an example schema, and KrakenD with the plugin on
## 127.0.0.1:8080, in the foreground; Ctrl-C stops everything it started
run: plugin krakend
	$(call run-stack,8080,cd $(BUILD) && ./krakend run -c $(CURDIR)/krakend/krakend.json)

## service: the krakend-kafka service binary (`krakend-kafka serve -c FILE`)
SERVICE_BIN := $(CARGO_TARGET_DIR)/release/krakend-kafka
service:
	cargo build --release --bin krakend-kafka

## run-service: `make run` with the service on 127.0.0.1:8082 in place of the gateway
run-service: service
	$(call run-stack,8082,$(SERVICE_BIN) serve -c $(CURDIR)/krakend/service/service.json)

VERSION = $(shell awk -F'"' '/^version/ {print $$2; exit}' Cargo.toml)
IMAGE := $(BUILD)/krakend-kafka.oci.tar
IMAGE_CONTEXT := $(BUILD)/image
SERVICE_IMAGE := $(BUILD)/krakend-kafka-service.oci.tar
SERVICE_IMAGE_CONTEXT := $(BUILD)/service-image

# An image's root file system in $(1)/rootfs: what the binaries $(2) need at run time besides themselves,
# glibc (ldd lists it), the CA bundle, and a passwd/group naming the non-root user $(3).
define image-rootfs
	rm -rf $(1) && mkdir -p $(1)/rootfs/etc/ssl/certs $(1)/rootfs/tmp
	for lib in $$(ldd $(2) | awk '/=> \// {print $$3} /^\t\/lib64/ {print $$1}' | sort -u); do \
	  install -D -m 0755 "$$(readlink -f $$lib)" "$(1)/rootfs$$lib"; done
	cp /etc/ssl/certs/ca-certificates.crt $(1)/rootfs/etc/ssl/certs/
	printf 'root:x:0:0::/:/sbin/nologin\n$(3):x:1000:1000::/:/sbin/nologin\n' > $(1)/rootfs/etc/passwd
	printf 'root:x:0:\n$(3):x:1000:\n' > $(1)/rootfs/etc/group
	printf 'hosts: files dns\n' > $(1)/rootfs/etc/nsswitch.conf
	chmod 1777 $(1)/rootfs/tmp
endef

# Builds the image of Dockerfile $(1) from context $(2) as localhost/$(3) into the OCI archive $(4), with
# buildah: no Docker engine or image registry needed.
define buildah-image
	command -v buildah >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null; }
	buildah --storage-driver vfs rmi -f localhost/$(3):$(VERSION) >/dev/null 2>&1 || true
	buildah --storage-driver vfs bud --isolation chroot --layers=false -f $(1) -t localhost/$(3):$(VERSION) $(2)
	rm -f $(4)
	buildah --storage-driver vfs push localhost/$(3):$(VERSION) oci-archive:$(4):$(3):$(VERSION)
	@echo "image: $(4) ($$(du -h $(4) | cut -f1) compressed)"
endef

## image-context: build/image/, what krakend/Dockerfile copies into the image
image-context: plugin krakend
	$(call image-rootfs,$(IMAGE_CONTEXT),$(GATEWAY) $(PLUGIN),krakend)
	cp $(GATEWAY) $(PLUGIN) $(IMAGE_CONTEXT)/
	cp krakend/krakend-container.json $(IMAGE_CONTEXT)/krakend.json

## image: the gateway's container image as an OCI archive (build/krakend-kafka.oci.tar), built with buildah
image: image-context
	$(call buildah-image,krakend/Dockerfile,$(IMAGE_CONTEXT),krakend-kafka,$(IMAGE))

## image-test: runs the image's own krakend (unpacked, chroot) against local Kafka and the Glue emulator
image-test: image
	$(WITH_TEST_SERVICES) tests/image/test.sh $(IMAGE)

## service-image-context: build/service-image/, what krakend/service/Dockerfile copies into the image
service-image-context: service
	$(call image-rootfs,$(SERVICE_IMAGE_CONTEXT),$(SERVICE_BIN),krakend-kafka)
	cp $(SERVICE_BIN) $(SERVICE_IMAGE_CONTEXT)/
	cp krakend/service/service-container.json $(SERVICE_IMAGE_CONTEXT)/service.json

## service-image: the service's container image (build/krakend-kafka-service.oci.tar), built with buildah
service-image: service-image-context
	$(call buildah-image,krakend/service/Dockerfile,$(SERVICE_IMAGE_CONTEXT),krakend-kafka-service,$(SERVICE_IMAGE))

## service-image-test: runs the service image's own binary (unpacked, chroot) against the test services
service-image-test: service-image
	$(WITH_TEST_SERVICES) tests/image/test.sh $(SERVICE_IMAGE)

## bench: throughput, latency, CPU and memory of every scenario on this machine, with ratios
bench: plugin krakend-rig service
	command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(WITH_TEST_SERVICES) KK_SERVICE_BIN=$(SERVICE_BIN) tests/bench/run.sh

# cargo-fuzz, pinned and installed into the cache on first use (built in a temporary directory, not in
# the shared target directory); the targets build with the nightly toolchain.
CARGO_FUZZ := $(CACHE)/cargo-fuzz/bin/cargo-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= header_list request_from_parts json_to_protobuf json_to_avro json_schema

$(CARGO_FUZZ):
	env -u CARGO_TARGET_DIR cargo install cargo-fuzz --version 0.13.2 --locked --root $(CACHE)/cargo-fuzz

## fuzz: each fuzz target of tests/fuzz for FUZZ_SECONDS (60) seconds, one at a time on one core; fails on
## a crash (its input kept under ~/.cache/krakend-kafka/fuzz/artifacts/) and prints each target's executions
fuzz: $(CARGO_FUZZ)
	PATH="$(dir $(CARGO_FUZZ)):$$PATH" KK_CACHE=$(CACHE) tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
