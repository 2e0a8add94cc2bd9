#!/usr/bin/env bash
# End-to-end suite: the real dashbridge binary (release build) in front of the fake DashScope
# upstream, exercised by the clients people already use: the official `openai` Python SDK,
# LangChain's ChatOpenAI and OpenAIEmbeddings, pydantic-ai's default structured output, the
# Cohere SDK on rerank, the official `openai` npm SDK, and on /v1/responses also the OpenAI
# Agents SDK and the Codex CLI (`codex exec`). The Responses suites skip themselves, with a loud
# SKIP line, only while the gateway answers 404 on /v1/responses.
#
#   bash tests/e2e/run.sh
#
# Needs: cargo, python3 (>= 3.10, with venv and pip), node (>= 20) and npm, and access to the
# package registries on the first run (the Python venv and node_modules are then reused while
# their pinned requirements do not change). Prints each suite's summary and ends with one line
# `N passed, N failed`; exits non-zero if anything failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

VENV="$HERE/.venv"
REQS="$HERE/python/requirements.txt"
NODE_DIR="$HERE/node"
SERVER_KEY="sk-e2e-server-key"
# The API key every client suite sends (the gateway runs without DASHBRIDGE_API_KEYS, so any
# bearer token is accepted); it must not be logged either.
CLIENT_KEY="sk-client"
# Longest life of each server we start, should this script be killed before its trap runs.
SERVER_LIFETIME=1200

WORK="$(mktemp -d "${TMPDIR:-/tmp}/dashbridge-e2e.XXXXXX")"
FAKE_PID=""
GW_PID=""
REDIS_PID=""
GW_A_PID=""
GW_B_PID=""

stop_pid() {
    # stop_pid PID: SIGTERM, up to 10 s of grace, then SIGKILL. Only PIDs this script started.
    local pid="$1" i
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    stop_pid "$GW_PID"
    stop_pid "$GW_A_PID"
    stop_pid "$GW_B_PID"
    stop_pid "$REDIS_PID"
    stop_pid "$FAKE_PID"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '==> %s\n' "$*"; }
die() {
    printf 'e2e: %s\n' "$*" >&2
    exit 1
}

sha() { sha256sum | cut -d' ' -f1; }

# wait_for_line PID FILE REGEX: prints the first match of REGEX (grep -oE) in FILE, waiting up to
# 10 s; fails early if PID exits.
wait_for_line() {
    local pid="$1" file="$2" re="$3" i m
    for ((i = 0; i < 100; i++)); do
        m="$(grep -oE "$re" "$file" 2>/dev/null | head -n1 || true)"
        if [[ -n "$m" ]]; then
            printf '%s\n' "$m"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# Tools and builds
# ---------------------------------------------------------------------------------------------
for tool in cargo python3 node npm sha256sum timeout; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "python3 >= 3.10 is required (found $(python3 --version 2>&1))"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 20)) || die "node >= 20 is required (found $(node --version))"

say "building dashbridge and fake_dashscope (release)"
# The gateway alone (as it ships: the example's dev-dependencies would add to it), then the fake.
timeout 3600 cargo build --release --locked --bin dashbridge
timeout 3600 cargo build --release --locked --example fake_dashscope
GATEWAY_BIN="$ROOT/target/release/dashbridge"
FAKE_BIN="$ROOT/target/release/examples/fake_dashscope"

say "python client venv ($VENV)"
venv_stamp="$( (cat "$REQS"; python3 -c 'import sys; print(sys.version)') | sha)"
if [[ -x "$VENV/bin/python" && "$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)" == "$venv_stamp" ]]; then
    echo "up to date"
else
    rm -rf "$VENV"
    timeout 300 python3 -m venv "$VENV"
    timeout 1200 "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQS"
    printf '%s\n' "$venv_stamp" >"$VENV/.requirements.sha256"
fi
"$VENV/bin/python" -c 'import importlib.metadata as m; print("openai", m.version("openai"), "| langchain-openai", m.version("langchain-openai"), "| pydantic-ai-slim", m.version("pydantic-ai-slim"), "| cohere", m.version("cohere"), "| openai-agents", m.version("openai-agents"), "| pytest", m.version("pytest"))'

# LangChain's OpenAIEmbeddings tokenizes with tiktoken's cl100k_base, which tiktoken downloads on
# first use. Offline, it is read from TIKTOKEN_CACHE_DIR under the name tiktoken gives it (the
# SHA-1 of its download URL); the ranks come from the tiktoken-rs crate the gateway is built with.
say "tiktoken cl100k_base (from the tiktoken-rs crate)"
TIKTOKEN_CACHE_DIR="$HERE/.tiktoken"
tiktoken_src="$(cargo metadata --locked --format-version 1 | "$VENV/bin/python" -c '
import json, os, sys
meta = json.load(sys.stdin)
pkg = next(p for p in meta["packages"] if p["name"] == "tiktoken-rs")
print(os.path.join(os.path.dirname(pkg["manifest_path"]), "assets", "cl100k_base.tiktoken"))')"
tiktoken_key="$("$VENV/bin/python" -c '
import hashlib, inspect, re
import tiktoken_ext.openai_public as p
url = re.search(r"\"(https://[^\"]+/cl100k_base\.tiktoken)\"", inspect.getsource(p.cl100k_base)).group(1)
print(hashlib.sha1(url.encode()).hexdigest())')"
mkdir -p "$TIKTOKEN_CACHE_DIR"
cp "$tiktoken_src" "$TIKTOKEN_CACHE_DIR/$tiktoken_key"
TIKTOKEN_CACHE_DIR="$TIKTOKEN_CACHE_DIR" "$VENV/bin/python" -c '
import tiktoken
assert tiktoken.get_encoding("cl100k_base").encode("hello world") == [15339, 1917]' || die "tiktoken cannot load cl100k_base from $TIKTOKEN_CACHE_DIR"
export TIKTOKEN_CACHE_DIR

say "node client ($NODE_DIR)"
node_stamp="$( (cat "$NODE_DIR/package-lock.json"; node --version) | sha)"
if [[ -d "$NODE_DIR/node_modules" && "$(cat "$NODE_DIR/node_modules/.dashbridge-e2e.sha256" 2>/dev/null || true)" == "$node_stamp" ]]; then
    echo "up to date"
else
    (cd "$NODE_DIR" && timeout 600 npm ci --no-audit --no-fund)
    printf '%s\n' "$node_stamp" >"$NODE_DIR/node_modules/.dashbridge-e2e.sha256"
fi
(cd "$NODE_DIR" && node -p '"openai " + JSON.parse(require("fs").readFileSync("node_modules/openai/package.json")).version + " | node " + process.version')
CODEX_BIN="$NODE_DIR/node_modules/.bin/codex"
timeout 30 "$CODEX_BIN" --version || die "the pinned Codex CLI does not run ($CODEX_BIN)"

# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------
say "starting fake DashScope"
timeout -k 5 "$SERVER_LIFETIME" "$FAKE_BIN" --listen 127.0.0.1:0 >"$WORK/fake.out" 2>"$WORK/fake.err" &
FAKE_PID=$!
FAKE_BASE_URL="$(wait_for_line "$FAKE_PID" "$WORK/fake.out" '^listening on http://[0-9.]+:[0-9]+$' |
    sed 's/^listening on //')" || {
    cat "$WORK/fake.out" "$WORK/fake.err" >&2
    die "fake_dashscope did not print its address within 10 s"
}
echo "fake upstream: $FAKE_BASE_URL"

say "starting dashbridge"
# A clean environment: nothing from the caller's shell (a config file, client keys, RUST_LOG...)
# may change what the gateway does.
timeout -k 5 "$SERVER_LIFETIME" env -i PATH="$PATH" \
    DASHBRIDGE_LISTEN=127.0.0.1:0 \
    DASHBRIDGE_UPSTREAM="$FAKE_BASE_URL" \
    DASHSCOPE_API_KEY="$SERVER_KEY" \
    DASHBRIDGE_UPSTREAM_RETRIES=0 \
    DASHBRIDGE_LOG_FORMAT=json \
    DASHBRIDGE_SHUTDOWN_GRACE_SECS=5 \
    "$GATEWAY_BIN" >"$WORK/gateway.out" 2>"$WORK/gateway.err" &
GW_PID=$!
# The bound address is in a JSON log line: {"timestamp":...,"message":"listening on http://ADDR",...}
GW_ADDR="$(wait_for_line "$GW_PID" "$WORK/gateway.err" '^\{.*"listening on http://[0-9.]+:[0-9]+"' |
    grep -oE 'http://[0-9.]+:[0-9]+' | sed 's|^http://||')" || {
    cat "$WORK/gateway.out" "$WORK/gateway.err" >&2
    die "dashbridge did not log its address within 10 s"
}
export DASHBRIDGE_E2E_BASE_URL="http://$GW_ADDR/v1"

# Two more gateways sharing one redis-server (its own port and temp dir, stopped by PID): a
# conversation stored through one is continued through the other. CI must run it.
start_shared_gateway() {
    # start_shared_gateway NAME: starts a gateway on the shared Redis; sets SHARED_PID/SHARED_URL.
    local name="$1" addr
    timeout -k 5 "$SERVER_LIFETIME" env -i PATH="$PATH" \
        DASHBRIDGE_LISTEN=127.0.0.1:0 \
        DASHBRIDGE_UPSTREAM="$FAKE_BASE_URL" \
        DASHSCOPE_API_KEY="$SERVER_KEY" \
        DASHBRIDGE_UPSTREAM_RETRIES=0 \
        DASHBRIDGE_LOG_FORMAT=json \
        DASHBRIDGE_SHUTDOWN_GRACE_SECS=5 \
        DASHBRIDGE_STATE_URL="redis://127.0.0.1:$REDIS_PORT" \
        "$GATEWAY_BIN" >"$WORK/gateway-$name.out" 2>"$WORK/gateway-$name.err" &
    SHARED_PID=$!
    addr="$(wait_for_line "$SHARED_PID" "$WORK/gateway-$name.err" '^\{.*"listening on http://[0-9.]+:[0-9]+"' |
        grep -oE 'http://[0-9.]+:[0-9]+')" || {
        cat "$WORK/gateway-$name.out" "$WORK/gateway-$name.err" >&2
        die "dashbridge ($name, shared Redis) did not log its address within 10 s"
    }
    SHARED_URL="$addr/v1"
}
REDIS_BIN="$(command -v redis-server || true)"
if [[ -z "$REDIS_BIN" ]]; then
    if [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; then
        die "redis-server is not installed: CI must run the shared-state suite"
    fi
    echo "*** SKIP: redis-server is not installed: the shared-state suite skips ***"
else
    say "starting redis-server and two gateways sharing it"
    REDIS_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    mkdir -p "$WORK/redis"
    timeout -k 5 "$SERVER_LIFETIME" "$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 \
        --dir "$WORK/redis" --save "" --appendonly no >"$WORK/redis.out" 2>&1 &
    REDIS_PID=$!
    wait_for_line "$REDIS_PID" "$WORK/redis.out" 'Ready to accept connections' >/dev/null || {
        cat "$WORK/redis.out" >&2
        die "redis-server did not start within 10 s"
    }
    start_shared_gateway a
    GW_A_PID="$SHARED_PID"
    export DASHBRIDGE_E2E_SHARED_A="$SHARED_URL"
    start_shared_gateway b
    GW_B_PID="$SHARED_PID"
    export DASHBRIDGE_E2E_SHARED_B="$SHARED_URL"
    # test_shared_state.py also starts (and restarts, by its PID) a gateway of its own on it.
    export DASHBRIDGE_E2E_GATEWAY_BIN="$GATEWAY_BIN" DASHBRIDGE_E2E_SERVER_KEY="$SERVER_KEY"
    export DASHBRIDGE_E2E_STATE_URL="redis://127.0.0.1:$REDIS_PORT"
    echo "shared-state gateways: $DASHBRIDGE_E2E_SHARED_A $DASHBRIDGE_E2E_SHARED_B (redis port $REDIS_PORT)"
fi
# Recorded DashScope exchanges replayed by python/test_captures.py: ../shared beside the
# repository (for a git worktree, also beside its main checkout). Absent: that suite skips.
if [[ -z "${DASHBRIDGE_CAPTURES:-}" ]]; then
    common="$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)"
    for base in "$ROOT/.." "${common:-$ROOT/.git}/../.."; do
        if [[ -d "$base/shared/dashscope/captures" ]]; then
            DASHBRIDGE_CAPTURES="$(cd "$base/shared/dashscope/captures" && pwd)"
            break
        fi
    done
fi
export DASHBRIDGE_CAPTURES="${DASHBRIDGE_CAPTURES:-$ROOT/../shared/dashscope/captures}"
echo "captures: $DASHBRIDGE_CAPTURES"
export FAKE_BASE_URL
echo "gateway: $DASHBRIDGE_E2E_BASE_URL"

# The clients talk to 127.0.0.1 only: no proxy, no ambient OpenAI/LangSmith settings.
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
unset OPENAI_API_KEY OPENAI_BASE_URL OPENAI_API_BASE OPENAI_ORG_ID OPENAI_PROJECT_ID
unset LANGCHAIN_TRACING_V2 LANGSMITH_TRACING LANGCHAIN_API_KEY LANGSMITH_API_KEY
export PYTHONDONTWRITEBYTECODE=1
# For the Responses suites: the Python that runs the one stream checker (also from Node), and
# the pinned Codex CLI.
export DASHBRIDGE_E2E_PYTHON="$VENV/bin/python"
export DASHBRIDGE_E2E_CODEX="$CODEX_BIN"

responses_status="$("$VENV/bin/python" - "$DASHBRIDGE_E2E_BASE_URL" <<'PY' || echo "none"
import sys
import httpx

r = httpx.post(sys.argv[1] + "/responses", json={"model": "qwen-plus", "input": "scenario:text probe"},
               headers={"authorization": "Bearer sk-client"}, timeout=30)
print(r.status_code)
PY
)"
if [[ "$responses_status" == 404 ]]; then
    echo "*****************************************************************************************"
    echo "*** SKIP: POST /v1/responses answers 404: this gateway has no Responses route yet.     ***"
    echo "*** The Responses suites (python-responses, python-agents, codex, node-responses) skip ***"
    echo "*** their client tests; they run for real as soon as the route answers.                ***"
    echo "*****************************************************************************************"
else
    echo "POST /v1/responses answers $responses_status: the Responses suites run"
fi

# ---------------------------------------------------------------------------------------------
# Suites
# ---------------------------------------------------------------------------------------------
TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0
SUMMARIES=()

# tally NAME PASSED FAILED SKIPPED RC: a non-zero RC with no failure counted (a crash, a timeout,
# a collection error) counts as one failure.
tally() {
    local name="$1" p="$2" f="$3" s="$4" rc="$5"
    if ((rc != 0 && f == 0)); then
        f=1
    fi
    TOTAL_PASSED=$((TOTAL_PASSED + p))
    TOTAL_FAILED=$((TOTAL_FAILED + f))
    TOTAL_SKIPPED=$((TOTAL_SKIPPED + s))
    SUMMARIES+=("$(printf '%-24s %3d passed, %d failed, %d skipped (exit %d)' "$name:" "$p" "$f" "$s" "$rc")")
}

# E2E_ONLY=REGEX runs only the suites whose name matches (while iterating; CI runs them all).
skip_suite() { [[ -n "${E2E_ONLY:-}" && ! "$1" =~ $E2E_ONLY ]]; }

run_pytest() {
    # run_pytest NAME FILE...: -rs prints every skip reason (the loud Responses SKIP).
    local name="$1" rc=0 counts f files=()
    skip_suite "$name" && return 0
    shift
    for f in "$@"; do files+=("$HERE/python/$f"); done
    say "suite: $name (pytest -q $*)"
    timeout -k 5 600 "$VENV/bin/python" -m pytest -q -rs \
        -c "$HERE/python/pytest.ini" --rootdir "$HERE/python" \
        --junitxml "$WORK/$name.xml" "${files[@]}" || rc=$?
    counts="$("$VENV/bin/python" - "$WORK/$name.xml" <<'PY' || echo "0 0 0"
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
n = lambda k: sum(int(s.get(k, 0)) for s in suites)
failed = n("failures") + n("errors")
print(n("tests") - failed - n("skipped"), failed, n("skipped"))
PY
)"
    # shellcheck disable=SC2086
    tally "$name" $counts "$rc"
}

run_node() {
    # run_node NAME FILE
    local name="$1" file="$2" rc=0 p f c s tap="$WORK/$1.tap"
    skip_suite "$name" && return 0
    say "suite: $name (node --test $file)"
    (cd "$NODE_DIR" && timeout -k 5 300 node --test \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$tap" \
        "$file") || rc=$?
    p="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n1)"
    f="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n1)"
    c="$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n1)"
    s="$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n1)"
    tally "$name" "${p:-0}" "$((${f:-0} + ${c:-0}))" "${s:-0}" "$rc"
}

run_pytest python-openai test_openai_sdk.py
run_pytest python-langchain test_langchain.py
run_pytest python-captures test_captures.py
run_pytest python-pydantic-ai test_pydantic_ai.py
run_pytest python-embeddings test_embeddings.py
run_pytest langchain-embeddings test_langchain_embeddings.py
run_pytest python-rerank test_rerank.py
run_node node-openai openai.test.mjs
run_node node-embeddings embeddings.test.mjs
run_pytest python-responses test_responses_check.py test_responses.py
run_pytest python-agents test_agents.py
run_pytest python-shared-state test_shared_state.py
run_pytest codex test_codex.py
run_node node-responses responses.test.mjs

# ---------------------------------------------------------------------------------------------
# Checks on the gateway itself: clean shutdown, and no secret in its logs.
# ---------------------------------------------------------------------------------------------
say "suite: gateway checks"
check_p=0
check_f=0
check() {
    # check DESCRIPTION OK(0|1)
    if [[ "$2" == 0 ]]; then
        echo "ok: $1"
        check_p=$((check_p + 1))
    else
        echo "FAILED: $1"
        check_f=$((check_f + 1))
    fi
}

gw_rc=0
kill -TERM "$GW_PID" 2>/dev/null || true
for ((i = 0; i < 150; i++)); do
    kill -0 "$GW_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$GW_PID" 2>/dev/null; then
    gw_rc=124
    stop_pid "$GW_PID"
else
    wait "$GW_PID" || gw_rc=$?
fi
GW_PID=""
check "dashbridge exits 0 within 15 s of SIGTERM (exit $gw_rc)" "$((gw_rc != 0))"

cat "$WORK/gateway.out" "$WORK/gateway.err" >"$WORK/gateway.log"
log_lines="$(wc -l <"$WORK/gateway.log")"
# The scan must not be vacuous: the error scenarios above make the gateway log WARN lines.
warn_lines="$(grep -c '"level":"WARN"' "$WORK/gateway.log" || true)"
# (With E2E_ONLY the error scenarios may not have run: then a quiet log is no failure.)
only_some="${E2E_ONLY:-}"
check "gateway logged JSON lines during the suites ($log_lines lines, $warn_lines WARN)" "$((warn_lines == 0 && ${#only_some} == 0))"
non_json="$(grep -vc '^{' "$WORK/gateway.log" || true)"
check "every gateway log line is JSON ($non_json other lines)" "$((non_json != 0))"
leaks="$(grep -cF "$SERVER_KEY" "$WORK/gateway.log" || true)"
check "the server's DashScope key never appears in the gateway log ($leaks lines)" "$((leaks != 0))"
if ((leaks != 0)); then
    grep -nF "$SERVER_KEY" "$WORK/gateway.log" | sed "s/$SERVER_KEY/<SERVER KEY>/g" | head -n5
fi
client_leaks="$(grep -cF "$CLIENT_KEY" "$WORK/gateway.log" || true)"
check "the clients' bearer token never appears in the gateway log ($client_leaks lines)" "$((client_leaks != 0))"
tally gateway-checks "$check_p" "$check_f" 0 0

# ---------------------------------------------------------------------------------------------
say "summary"
printf '%s\n' "${SUMMARIES[@]}"
if ((TOTAL_SKIPPED > 0)); then
    echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
else
    echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
fi
((TOTAL_FAILED == 0))
