# pidone's everyday commands. `make demo` and `make test` are the two a newcomer needs.
MUSL := x86_64-unknown-linux-musl
STATIC := target/$(MUSL)/release/pidone
# The importers' companion binary (pidone import runs it); built beside pidone by the same cargo build.
IMPORT := target/$(MUSL)/release/pidone-import
# The init-only build (`--no-default-features`: single-program mode alone, no configuration,
# services or control socket), in a target directory of its own so that it never replaces the
# default build's binary. Its budget is 400 kB (docs/bench.md).
INIT_ONLY_DIR := target/initonly
INIT_ONLY := $(INIT_ONLY_DIR)/$(MUSL)/release/pidone
INIT_ONLY_BUDGET := 409600
# The TLS build (`--features tls`: HTTPS on the API's TCP port, docs/api.md#tls), in a target
# directory of its own so that it never replaces the default build's binary. ring's C needs a
# C compiler for musl (Debian's musl-tools).
TLS_DIR := target/tls
TLS := $(TLS_DIR)/$(MUSL)/release/pidone
# Cargo features beyond the default ones, e.g. `make static test FEATURES=...`.
FEATURES ?=
FEATURE_FLAGS := $(if $(FEATURES),--features $(FEATURES))

# The static binaries are built with std itself rebuilt for size (docs/bench.md, "std rebuilt
# for size"): nightly cargo's -Zbuild-std, with std's `backtrace` feature off, leaves out the
# backtrace symbolizer (gimli, addr2line, miniz_oxide, rustc-demangle) and libunwind, which the
# prebuilt std links through its default panic hook even with panic = "abort": about 240 KB.
# It takes the machine's nightly toolchain, with rust-src and the musl target (added here when
# missing). Without a nightly toolchain, or should that build fail, the stable build is made
# instead, with a warning: the same program, about 240 KB larger (over the 1 MiB budget).
BUILD_STD := -Zbuild-std=std,panic_abort -Zbuild-std-features=
define release
	@rustup target list --installed 2>/dev/null | grep -qx $(MUSL) || rustup target add $(MUSL)
	@if rustc +nightly --version >/dev/null 2>&1 \
	  && { rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src' \
	       || rustup +nightly component add rust-src; } \
	  && { rustup +nightly target list --installed 2>/dev/null | grep -qx $(MUSL) \
	       || rustup +nightly target add $(MUSL); }; then \
	  echo "cargo +nightly build --release --target $(MUSL) $(BUILD_STD) $(1)"; \
	  cargo +nightly build --release --target $(MUSL) $(BUILD_STD) $(1) && exit 0; \
	  echo "warning: the build with std rebuilt failed; building with the prebuilt std" >&2; \
	else \
	  echo "warning: no nightly toolchain with rust-src: building with the prebuilt std, about 240 KB larger" >&2; \
	fi; \
	cargo build --release --target $(MUSL) $(1)
endef

.PHONY: build static static-tls init-only test test-tls lint fmt bench bench-quick reliability demo clean

build:
	cargo build --release

static:
	$(call release,$(FEATURE_FLAGS))
	@ls -l $(STATIC) $(IMPORT)

static-tls:
	$(call release,--features tls --target-dir $(TLS_DIR))
	@ls -l $(TLS)

init-only:
	@rustup target list --installed 2>/dev/null | grep -qx $(MUSL) || rustup target add $(MUSL)
	$(call release,--no-default-features --target-dir $(INIT_ONLY_DIR))
	@ls -l $(INIT_ONLY)
	@size=$$(stat -c %s $(INIT_ONLY)); [ $$size -le $(INIT_ONLY_BUDGET) ] || \
	  { echo "init-only build: $$size bytes, over its budget of $(INIT_ONLY_BUDGET)"; exit 1; }

# The container tests (tests/containers.rs) put the static binary in scratch images. The
# single-program tests run a second time against the init-only build ($$PIDONE_BIN).
test: static init-only
	cargo test --lib --tests --no-fail-fast $(FEATURE_FLAGS)
	PIDONE_BIN=$(abspath $(INIT_ONLY)) cargo test --test single --no-fail-fast
	$(MAKE) test-tls

# The TLS build's tests: HTTPS end to end (tests/tcp_tls.rs, with openssl's certificates), the
# TCP API's tests under it, and the unit tests of what the feature changes.
test-tls:
	cargo test --features tls --no-fail-fast --test tcp_tls --test tcp_api
	cargo test --features tls --no-fail-fast --lib -- control:: config::

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features tls -- -D warnings
	cargo clippy --no-default-features --target-dir $(INIT_ONLY_DIR) -- -D warnings

fmt:
	cargo fmt

bench: static
	cargo bench --bench bench
	cargo bench --bench logs

bench-quick: static
	cargo bench --bench bench -- --quick

reliability: static
	cargo bench --bench reliability

demo: build
	./examples/demo.sh

clean:
	cargo clean
