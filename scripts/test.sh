#!/usr/bin/env bash
# Runs every test: formatting and lints, the Rust suite (unit, golden, contract, fault,
# shutdown, binary and fuzz-harness tests), the container checks, the instruction-count guard
# of the hot paths (bench/instructions.sh, valgrind), and the end-to-end suite
# with the official OpenAI Python and Node SDKs and LangChain against the release binary.
# Installs what it needs (crates, a Python venv, npm packages) by itself; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

step "cargo test"
cargo test --locked

step "container: Dockerfile lint, manifests, shipped config"
bash scripts/check-dockerfile.sh

step "release binary (the Dockerfile's build) and its shipped config"
cargo build --release --locked
./target/release/dashbridge --check-config --config config/dashbridge.toml >/dev/null

step "instruction counts of the hot paths (callgrind) against bench/instructions-baseline.txt"
bash bench/instructions.sh

step "end-to-end: OpenAI Python SDK, OpenAI Node SDK, LangChain"
bash tests/e2e/run.sh
