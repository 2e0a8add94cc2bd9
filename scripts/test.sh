#!/usr/bin/env bash
# Runs every test: formatting and lints, the Rust suite (unit, golden, contract, fault,
# shutdown, binary, state-store with a real redis-server, and fuzz-harness tests), the
# container checks, the instruction-count guard of the hot paths (bench/instructions.sh,
# valgrind), and the end-to-end suite with the official OpenAI Python and Node SDKs, LangChain,
# pydantic-ai, the Cohere SDK, the Agents SDK and Codex CLI against the release binary.
# Installs what it needs (redis-server, valgrind, crates, a Python venv, npm packages) by
# itself; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
# One full run gains nothing from incremental caches, which would add gigabytes to target/.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
disk() { df -hP . | awk 'NR == 2 { print "disk: " $4 " free of " $2 }'; }
disk

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

step "redis-server for the state-store tests (Debian package)"
if ! command -v redis-server >/dev/null; then
  sudo_cmd=()
  if [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq redis-server >/dev/null
fi
redis-server --version
# The Redis tests start their own instance; under CI they fail (not skip) without one.
export CI="${CI:-true}"

step "cargo test"
cargo test --locked

disk

step "container: Dockerfile lint, manifests, shipped config"
bash scripts/check-dockerfile.sh

step "release binary (the Dockerfile's build) and its shipped config"
cargo build --release --locked
./target/release/dashbridge --check-config --config config/dashbridge.toml >/dev/null

step "end-to-end: OpenAI Python and Node SDKs, LangChain, pydantic-ai, Cohere, the Agents SDK, Codex CLI"
bash tests/e2e/run.sh

disk

step "instruction counts of the hot paths (callgrind) against bench/instructions-baseline.txt"
bash bench/instructions.sh
