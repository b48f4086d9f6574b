# gst-torch: `make demo` and `make test` do all set-up on a fresh Debian 12 / Ubuntu 22.04+.
# Each step is idempotent: a second run skips what exists.

DATA_HOME   ?= $(or $(XDG_DATA_HOME),$(HOME)/.local/share)
DATA_DIR    ?= $(DATA_HOME)/gst-torch
VENV        ?= $(DATA_DIR)/venv
# The default model, calibrated for this machine's engine (x86 on x86-64, qnnpack on ARM), and the
# seed's own (the published weights, calibrated for qnnpack) for `make accuracy` and `make bench`.
MODEL       ?= $(DATA_DIR)/mobilenet_v2_quantized.pt
SEED_MODEL  ?= $(DATA_DIR)/mobilenet_v2_quantized-qnnpack.pt
PLUGIN_DIR  ?= $(DATA_HOME)/gstreamer-1.0/plugins
SHARED      ?= $(abspath ../shared)
# Offline weights for the export where ../shared has them; otherwise torchvision downloads them.
TORCH_HOME  ?= $(if $(wildcard $(SHARED)/torch_home/hub),$(SHARED)/torch_home,)
SOURCE      ?= file
TEST_MODELS := $(CURDIR)/target/test-models
# GstAnalytics meta (GStreamer 1.24+): the `analytics` cargo feature where pkg-config finds it.
FEATURES    ?= $(shell pkg-config --exists 'gstreamer-analytics-1.0 >= 1.24' && echo analytics)

TORCH_ENV = VIRTUAL_ENV=$(VENV) PATH="$(VENV)/bin:$$PATH" LIBTORCH_USE_PYTORCH=1
PLUGIN    = target/release/libgsttorch.so
DEPS_ARGS =

# aarch64 (a Raspberry Pi with a 64-bit OS; README, Raspberry Pi): PyPI's aarch64 torch 2.13.0 is
# a CUDA build (2.9 GB to download, 4.8 GB installed). There the plugin builds against and loads
# LIBTORCH_DIR, that wheel's CPU libraries and headers alone (`make libtorch`: 440 MB download,
# 0.35 GB installed), and the venv, used only by Python (the model export, test models), gets
# PyPI's CPU-only torch 2.9.1 (tools/setup.sh venv; its exports load in libtorch 2.13.0).
# A plugin cross-built by `make aarch64` (copied to target/aarch64-unknown-linux-gnu/release/ on the
# Pi) and newer than every source of the build is installed as it is instead of compiling, for
# `make demo` and the set-up targets (not `make test` and the benchmarks, which compile anyway):
# then neither Rust nor a compiler is needed (an arm64 Debian 13 root under qemu has neither).
ifeq ($(shell uname -m),aarch64)
LIBTORCH_DIR ?= $(DATA_DIR)/libtorch
TORCH_ENV     = VIRTUAL_ENV=$(VENV) PATH="$(VENV)/bin:$$PATH" LIBTORCH=$(LIBTORCH_DIR) LIBTORCH_CXX11_ABI=1
CROSS_PLUGIN := target/aarch64-unknown-linux-gnu/release/libgsttorch.so
COMPILING    := $(filter test bench bench-streams fuzz,$(MAKECMDGOALS))
# Its rpath finds libtorch relative to the installed plugin: $(PLUGIN_DIR)/../../gst-torch/libtorch.
CROSS_FITS   := $(filter $(abspath $(PLUGIN_DIR)/../../gst-torch/libtorch),$(abspath $(LIBTORCH_DIR)))
PREBUILT     := $(if $(COMPILING),,$(if $(wildcard $(CROSS_PLUGIN)),$(if $(shell find Cargo.toml Cargo.lock \
	build.rs src $(wildcard core) -newer $(CROSS_PLUGIN) 2>/dev/null | head -1),,$(CROSS_PLUGIN))))
ifneq ($(and $(PREBUILT),$(if $(CROSS_FITS),,no)),)
$(warning $(CROSS_PLUGIN) finds libtorch at $(abspath $(PLUGIN_DIR)/../../gst-torch/libtorch), not LIBTORCH_DIR=$(LIBTORCH_DIR): compiling instead)
PREBUILT     :=
endif
PLUGIN        = $(or $(PREBUILT),target/release/libgsttorch.so)
# `make demo` and the set-up targets install only what the demo needs (tools/setup.sh deps demo),
# without compiler and -dev packages where the cross-built plugin is installed; `make test` all.
DEPS_ARGS     = $(if $(filter test bench% accuracy fuzz,$(MAKECMDGOALS)),,demo $(if $(PREBUILT),--no-build))
endif

.PHONY: all deps venv libtorch build model install demo test test-core test-models fuzz bench \
	bench-models accuracy clean aarch64 test-aarch64 test-debian13

all: build

deps:
	tools/setup.sh deps $(DEPS_ARGS)

venv: deps
	tools/setup.sh venv $(VENV)

ifeq ($(shell uname -m),aarch64)
libtorch: deps
	tools/setup.sh libtorch $(LIBTORCH_DIR)

build: libtorch
ifneq ($(PREBUILT),)
	@echo "build: $(PREBUILT) (cross-built by make aarch64, newer than the sources): installed as it is, not compiled"
else
	$(TORCH_ENV) cargo build --release $(if $(FEATURES),--features $(FEATURES))
endif
else
libtorch:
	@echo "libtorch: the venv's torch ($(VENV)) is the plugin's libtorch here"

build: venv
	$(TORCH_ENV) cargo build --release $(if $(FEATURES),--features $(FEATURES))
endif

$(MODEL): tools/export_model.py | venv
	$(if $(TORCH_HOME),TORCH_HOME=$(TORCH_HOME)) $(VENV)/bin/python tools/export_model.py --output $(MODEL)

$(SEED_MODEL): tools/export_model.py | venv
	$(if $(TORCH_HOME),TORCH_HOME=$(TORCH_HOME)) $(VENV)/bin/python tools/export_model.py --engine qnnpack \
		--output $(SEED_MODEL)

model: venv $(MODEL) $(SEED_MODEL)

install: build
	install -D -m 644 $(PLUGIN) $(PLUGIN_DIR)/libgsttorch.so
	@echo "installed $(PLUGIN_DIR)/libgsttorch.so"

demo: install model
	GST_TORCH_MODEL=$(MODEL) /usr/bin/python3 pipelines/demo.py $(if $(filter camera,$(SOURCE)),--camera,data/cat-coffee-orange.webm)

test-models: venv $(MODEL)
	$(VENV)/bin/python tools/make_test_models.py $(TEST_MODELS) --model $(MODEL)

# The core crate's unit tests need neither libtorch nor GStreamer: seconds, before any set-up.
test-core:
	cargo test -p torchcore

test: test-core install model test-models
	tools/check_elements.py
	$(TORCH_ENV) cargo clippy --release --workspace --all-targets $(if $(FEATURES),--features $(FEATURES)) -- -D warnings
	$(TORCH_ENV) GST_TORCH_MODEL=$(MODEL) GST_TORCH_TEST_MODELS=$(TEST_MODELS) GST_TORCH_SHARED=$(SHARED) \
		cargo test --release $(if $(FEATURES),--features $(FEATURES))
	$(TORCH_ENV) cargo build --release --examples $(if $(FEATURES),--features $(FEATURES))
	GST_TORCH_MODEL=$(MODEL) GST_TORCH_TEST_MODELS=$(TEST_MODELS) GST_TORCH_SHARED=$(SHARED) tests/pipelines.sh

# Side-by-side benchmark (tools/bench/bench.py); QUICK=1 for a short run; ONLY=detect for the
# detection rows alone (examples/detect_bench.rs and the core's nms_bench).
bench: install model
	$(TORCH_ENV) cargo build --release --example raw_model --example regions_bench --example detect_bench \
		$(if $(FEATURES),--features $(FEATURES))
	cargo build -p torchcore --release --example nms_bench
	GST_TORCH_MODEL=$(MODEL) GST_TORCH_SHARED=$(SHARED) VENV=$(VENV) tools/bench/bench.py \
		--seed-model $(SEED_MODEL) $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))

# Many streams in one process (tools/bench/streams.py): separate instances vs one shared model
# (model-instance-id) vs shared + batched, at 1, 2, 4 and 8 streams; QUICK=1 for a short run. The
# driver (examples/streams_bench.rs) links the plugin in: nothing to install.
.PHONY: bench-streams
bench-streams: venv $(MODEL)
	$(TORCH_ENV) cargo build --release --example streams_bench
	GST_TORCH_MODEL=$(MODEL) tools/bench/streams.py $(if $(QUICK),--quick)

# Labelled accuracy through the element (tools/accuracy.py): the default model and the seed's,
# under engine=auto and each engine, on a fixed set made from ../shared/media.
accuracy: install model
	GST_TORCH_MODEL=$(MODEL) GST_TORCH_SHARED=$(SHARED) VENV=$(VENV) tools/accuracy.py \
		--model $(MODEL) --model $(SEED_MODEL) --engines auto,qnnpack,x86,fbgemm \
		--reference $(SEED_MODEL):qnnpack

# The seed's model table for the element on this machine (tools/bench/models.py): exports each
# model once (random weights, offline) into target/bench/models/.
bench-models: install model
	GST_TORCH_MODEL=$(MODEL) VENV=$(VENV) tools/bench/models.py $(if $(QUICK),--quick)

# Fuzz the pure preprocessing and label parsing code for FUZZ_SECONDS each (needs cargo-fuzz;
# RUSTC_BOOTSTRAP lets the stable toolchain take cargo-fuzz's nightly flags).
FUZZ_SECONDS ?= 10
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	for t in preprocess labels; do \
		RUSTC_BOOTSTRAP=1 cargo fuzz run --release $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

# Raspberry Pi (64-bit OS): cross-build the plugin for aarch64 (target/aarch64-unknown-linux-gnu/
# release/libgsttorch.so) in a Debian sid root, against a Debian 13 arm64 root with GStreamer and
# libtorch (tools/rootfs.sh, tools/cross-aarch64.sh; roots cached in $(DATA_DIR)/rootfs, made as
# root, nothing installed on the host); then test it in the arm64 root under qemu.
# On aarch64 itself (a Pi) `make test-aarch64` runs those tests natively after the same set-up as
# `make demo` (tools/test-aarch64.sh); on a PC it runs that in the arm64 root, with test models of
# its own (target/test-models-aarch64): the checkout is mounted at the same path there, and the
# host's target/test-models (bgr255.pt wraps the host's model) must not be rewritten from the root.
ROOTFS = ROOTFS_DIR=$(DATA_DIR)/rootfs tools/rootfs.sh

ifeq ($(shell uname -m),aarch64)
aarch64:
	@echo "make aarch64 cross-builds on an x86-64 PC; here \`make build\` compiles natively" >&2; exit 1

test-aarch64: install $(MODEL) test-models
	GST_TORCH_MODEL=$(MODEL) GST_TORCH_SHARED=$(SHARED) GST_TORCH_TEST_MODELS=$(TEST_MODELS) VENV=$(VENV) \
		tools/test-aarch64.sh
else
aarch64:
	$(ROOTFS) sid-cross tools/cross-aarch64.sh

test-aarch64: aarch64
	ROOTFS_BIND="$(wildcard $(SHARED))" $(ROOTFS) debian13-arm64 \
		make test-aarch64 SHARED=$(or $(realpath $(SHARED)),$(SHARED)) \
		TEST_MODELS=$(CURDIR)/target/test-models-aarch64
endif

# Debian 13 (GStreamer 1.26, the GstAnalytics meta) in a cached amd64 root (tools/rootfs.sh
# debian13): the plugin built there with the host's Rust and this venv's libtorch (into
# target/debian13) and installed per user with $(MODEL); tools/test-debian13.sh tests it there.
test-debian13: venv $(MODEL) test-models
	ROOTFS_VENV=$(VENV) ROOTFS_MODEL=$(MODEL) ROOTFS_BIND="$(wildcard $(SHARED)) $(TEST_MODELS)" \
		GST_TORCH_SHARED=$(or $(realpath $(SHARED)),$(SHARED)) GST_TORCH_TEST_MODELS=$(TEST_MODELS) \
		$(ROOTFS) debian13 tools/test-debian13.sh

clean:
	cargo clean
