#!/usr/bin/env bash
# Instructions per request of the whole gateway process (hyper, axum, reqwest, tracing, the
# handler, the translation: everything in user space), counted by valgrind's callgrind: the
# gateway serves N1 and then, in a fresh process, N2 sequential requests of one kind, and the
# difference of the two totals ÷ (N2 − N1) cancels start-up. Load-proof, like
# bench/instructions.sh, but for the whole stack; used for the A/B figures in bench/README.md.
#
#   bash bench/process-instructions.sh KIND [ENV=VALUE ...]
#   KIND: ns (chat non-stream), s (chat, 20-frame stream), emb (10-input embeddings, base64),
#         rns (Responses non-stream, store:false), rst (Responses, previous_response_id + store)
#   BIN=path/to/dashbridge (default target/release/dashbridge), N1=50, N2=550.
#
# Needs the release build of the gateway and of the examples fake_dashscope and bench_client,
# and valgrind. Loopback only; every process it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:?usage: bash bench/process-instructions.sh ns|s|emb|rns|rst [ENV=VALUE ...]}
shift
BIN=${BIN:-target/release/dashbridge}
EX=target/release/examples
N1=${N1:-50} N2=${N2:-550}
W=$(mktemp -d /tmp/dashbridge-pi.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT
wait_url() { # FILE → the first http://127.0.0.1:PORT in it (20 s at most)
    for _ in $(seq 200); do
        grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$1" 2>/dev/null | head -1 | grep . && return 0
        sleep 0.1
    done
    echo "no address in $1" >&2
    return 1
}
"$EX/fake_dashscope" --listen 127.0.0.1:0 >"$W/fake.out" 2>&1 &
PIDS+=($!)
FAKE=$(wait_url "$W/fake.out")
SYS='{"role":"system","content":"You are a helpful assistant."}'
AUTH="Authorization: Bearer sk-bench-client"
case $KIND in
    ns) P=/v1/chat/completions; echo "{\"model\":\"qwen-plus\",\"messages\":[$SYS,{\"role\":\"user\",\"content\":\"Who are you? scenario:text\"}]}" >"$W/body.json" ;;
    s) P=/v1/chat/completions; echo "{\"model\":\"qwen-plus\",\"stream\":true,\"messages\":[$SYS,{\"role\":\"user\",\"content\":\"Tell me about the fox. scenario:stream20\"}]}" >"$W/body.json" ;;
    emb) P=/v1/embeddings; python3 -c "import json,sys; json.dump({'model':'text-embedding-v4','encoding_format':'base64','input':[f'Benchmark passage {i}: the wind is swift, the sky is high, the apes cry mournfully.' for i in range(10)]}, open(sys.argv[1],'w'))" "$W/body.json" ;;
    rns) P=/v1/responses; echo '{"model":"qwen-plus","instructions":"You are a helpful assistant.","input":"Who are you? scenario:text","store":false}' >"$W/body.json" ;;
    rst) P=/v1/responses ;;
    *) echo "unknown kind $KIND" >&2; exit 2 ;;
esac
run() { # N [ENV=VALUE ...] → total instructions of a gateway that served N requests
    local n=$1 pid url
    shift
    env DASHBRIDGE_LISTEN=127.0.0.1:0 DASHBRIDGE_UPSTREAM="$FAKE" DASHSCOPE_API_KEY=sk-bench DASHBRIDGE_UPSTREAM_RETRIES=0 \
        DASHBRIDGE_ACCESS_LOG=false "$@" valgrind --tool=callgrind --callgrind-out-file="$W/cg.$n" "$BIN" 2>"$W/gw.$n.err" &
    pid=$!
    PIDS+=("$pid")
    url=$(wait_url "$W/gw.$n.err")
    if [ "$KIND" = rst ]; then # a stored seed (scenario:echo); every turn continues it
        python3 - "$url$P" "$W/body.json" <<'PY'
import json, sys, urllib.request
h = {"content-type": "application/json", "authorization": "Bearer sk-bench-client"}
seed = {"model": "qwen-plus", "input": "Remember the fox. scenario:echo"}
r = json.load(urllib.request.urlopen(urllib.request.Request(sys.argv[1], json.dumps(seed).encode(), h), timeout=60))
json.dump({"model": "qwen-plus", "instructions": "You are a helpful assistant.", "input": "Who are you? scenario:text",
           "previous_response_id": r["id"]}, open(sys.argv[2], "w"))
PY
    fi
    "$EX/bench_client" stream --url "$url$P" --body "$W/body.json" --header "$AUTH" -n "$n" -c 1 >"$W/client.$n.json"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["ok"] == d["requests"] else "not every request answered 200: " + str(d["statuses"]))' "$W/client.$n.json"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    awk '/^(summary|totals):/ {print $2; exit}' "$W/cg.$n"
}
A=$(run "$N1" "$@")
B=$(run "$N2" "$@")
echo "$KIND: $(((B - A) / (N2 - N1))) instructions per request ($*)"
