#!/usr/bin/env bash
# Soak run: the release gateway in front of the fake DashScope, driven for SOAK_SECONDS
# (default 180) by examples/soak_client.rs with mixed stream / non-stream traffic, ~1% of it
# with an injected upstream fault (scenario:error-500, error-429, drop, midstream-error).
#
#   scripts/soak.sh                       # 180 s
#   SOAK_SECONDS=60 scripts/soak.sh       # shorter
#   SOAK_CONCURRENCY=32 (default), SOAK_TIMEOUT_SECS=15 (per-request client timeout)
#
# Loopback only (both servers bind 127.0.0.1:0). Prints the client's progress and ends with
#   soak: requests=N wrong=0 hung=0 rss_start=..KiB rss_end=..KiB ...
# Exits non-zero when any answer was wrong, any request hung, or a server failed to start.
# Stops only the two processes it started, by PID.

set -euo pipefail

SOAK_SECONDS="${SOAK_SECONDS:-180}"
SOAK_CONCURRENCY="${SOAK_CONCURRENCY:-32}"
SOAK_TIMEOUT_SECS="${SOAK_TIMEOUT_SECS:-15}"

cd "$(dirname "$0")/.."
work="$(mktemp -d)"
fake_pid=""
gw_pid=""

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    for pid in "$gw_pid" "$fake_pid"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "$gw_pid" "$fake_pid"; do
        if [[ -n "$pid" ]]; then
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE REGEX: print the first match of REGEX in FILE, waiting up to 20 s.
wait_for() {
    local file="$1" regex="$2" found=""
    for _ in $(seq 1 200); do
        found="$(grep -oE "$regex" "$file" 2>/dev/null | head -n 1 || true)"
        if [[ -n "$found" ]]; then
            printf '%s\n' "$found"
            return 0
        fi
        sleep 0.1
    done
    echo "soak: timed out waiting for /$regex/ in $file:" >&2
    cat "$file" >&2 || true
    return 1
}

echo "soak: building release binaries" >&2
cargo build --release --quiet --bin dashbridge
cargo build --release --quiet --example fake_dashscope --example soak_client

target/release/examples/fake_dashscope --listen 127.0.0.1:0 >"$work/fake.out" 2>&1 &
fake_pid=$!
fake_url="$(wait_for "$work/fake.out" 'http://127\.0\.0\.1:[0-9]+')"

DASHBRIDGE_LISTEN=127.0.0.1:0 \
DASHBRIDGE_UPSTREAM="$fake_url" \
DASHSCOPE_API_KEY=sk-soak-test \
DASHBRIDGE_UPSTREAM_RETRIES=1 \
DASHBRIDGE_RETRY_BASE_MS=5 \
DASHBRIDGE_UPSTREAM_TIMEOUT_SECS=10 \
DASHBRIDGE_SHUTDOWN_GRACE_SECS=2 \
    target/release/dashbridge >"$work/gateway.out" 2>"$work/gateway.err" &
gw_pid=$!
gw_url="$(wait_for "$work/gateway.err" 'http://127\.0\.0\.1:[0-9]+')"

echo "soak: fake=$fake_url (pid $fake_pid) gateway=$gw_url (pid $gw_pid) seconds=$SOAK_SECONDS concurrency=$SOAK_CONCURRENCY" >&2

status=0
target/release/examples/soak_client \
    --base "$gw_url" \
    --seconds "$SOAK_SECONDS" \
    --concurrency "$SOAK_CONCURRENCY" \
    --timeout-secs "$SOAK_TIMEOUT_SECS" \
    --pid "$gw_pid" || status=$?

if ! kill -0 "$gw_pid" 2>/dev/null; then
    echo "soak: the gateway exited during the run" >&2
    tail -n 20 "$work/gateway.err" >&2 || true
    status=1
fi
if grep -q 'panicked' "$work/gateway.err"; then
    echo "soak: the gateway logged a panic:" >&2
    grep -m 5 'panicked' "$work/gateway.err" >&2 || true
    status=1
fi
exit "$status"
