# pidone's everyday commands. `make demo` and `make test` are the two a newcomer needs.
MUSL := x86_64-unknown-linux-musl
STATIC := target/$(MUSL)/release/pidone
# The importers' companion binary (pidone import runs it); built beside pidone by the same cargo build.
IMPORT := target/$(MUSL)/release/pidone-import
# Optional cargo features, e.g. `make static test FEATURES=s6-commands` (s6-overlay's helper
# commands, docs/s6-overlay-commands.md: past the size budget, so not in the default build).
FEATURES ?=
FEATURE_FLAGS := $(if $(FEATURES),--features $(FEATURES))

.PHONY: build static test lint fmt bench bench-quick reliability demo clean

build:
	cargo build --release

static:
	@rustup target list --installed 2>/dev/null | grep -qx $(MUSL) || rustup target add $(MUSL)
	cargo build --release --target $(MUSL) $(FEATURE_FLAGS)
	@ls -l $(STATIC) $(IMPORT)

# The container tests (tests/containers.rs) put the static binary in scratch images.
test: static
	cargo test --lib --tests --no-fail-fast $(FEATURE_FLAGS)

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

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
