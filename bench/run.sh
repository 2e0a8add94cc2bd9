#!/usr/bin/env bash
# The dashbridge performance benchmark (issue 5). See bench/README.md.
#
# Loopback only. Builds release binaries, installs a load generator (oha, else wrk) and nginx
# when missing, then measures direct-to-fake, nginx→fake and dashbridge→fake in one run and
# writes bench/RESULTS.md. Every process it starts is stopped by PID (trap on EXIT).
#
# Knobs (environment): BENCH_DURATION (s per max-throughput run, default 5), BENCH_LAT_DURATION
# (s per fixed-rate run, default 5), BENCH_RATE (req/s, default 1000), BENCH_REPEATS (default 3),
# BENCH_CONC (default 64), BENCH_TTFB_N (default 2000), BENCH_IDLE_STREAMS (default 10000),
# BENCH_IDLE_HOLD_MS (default 15000), BENCH_PACED_CONC (default 1000), BENCH_TOOLS_DIR (default ~/.cache/dashbridge-bench),
# BENCH_OUT (default bench/RESULTS.md), BENCH_SKIP_BUILD=1, BENCH_LOADGEN=wrk (skip oha),
# BENCH_MICRO=1 (also run `cargo bench --bench translate` and append it to the report).
# BENCH_H2_MAX_STREAMS (default 250) and BENCH_H2CAP_HOLD_MS (default 2000) shape its HTTP/2 probe.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=${BENCH_DURATION:-5}
LAT_DUR=${BENCH_LAT_DURATION:-5}
RATE=${BENCH_RATE:-1000}
REPEATS=${BENCH_REPEATS:-3}
CONC=${BENCH_CONC:-64}
TTFB_N=${BENCH_TTFB_N:-2000}
IDLE_STREAMS=${BENCH_IDLE_STREAMS:-10000}
IDLE_HOLD_MS=${BENCH_IDLE_HOLD_MS:-15000}
PACED_C=${BENCH_PACED_CONC:-1000}
TOOLS=${BENCH_TOOLS_DIR:-$HOME/.cache/dashbridge-bench}
OUT=${BENCH_OUT:-$ROOT/bench/RESULTS.md}
WORK=$(mktemp -d /tmp/dashbridge-bench.XXXXXX)
RES=$WORK/results.jsonl
: >"$RES"
STARTED_AT=$(date -u +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

log() { printf '[bench %3ss] %s\n' "$(($(date -u +%s) - STARTED_AT))" "$*" >&2; }

# ---- process bookkeeping -----------------------------------------------------------------------
PIDS=()
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# BENCH_ONLY=main,idle,state,startup (comma-separated) runs only those sections; the report
# says n/a for the rest and goes to the work directory unless BENCH_OUT is set.
want() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; }

# Record a result: rec KEY JSON-VALUE
rec() { printf '{"k":"%s","v":%s}\n' "$1" "$2" >>"$RES"; }

# ---- prerequisites -----------------------------------------------------------------------------
need_python() {
    command -v python3 >/dev/null && return 0
    log "installing python3 (JSON parsing and the report)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
}
need_python
J() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); exec("for p in sys.argv[2:]:\n d=d[p] if not p.isdigit() or isinstance(d,dict) else d[int(p)]"); print(d)' "$@"; }

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null || return 1
    if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

LOADGEN=none
OHA=""
if [ "${BENCH_LOADGEN:-}" = wrk ]; then
    : # forced: skip oha
elif command -v oha >/dev/null; then
    OHA=$(command -v oha)
elif [ -x "$TOOLS/bin/oha" ]; then
    OHA=$TOOLS/bin/oha
else
    log "installing oha into $TOOLS (cargo install --locked; once, cached)"
    if timeout 1200 cargo install oha --locked --root "$TOOLS" >"$WORK/oha-install.log" 2>&1; then
        OHA=$TOOLS/bin/oha
    else
        log "oha could not be installed (see $WORK/oha-install.log); trying wrk"
    fi
fi
if [ -n "$OHA" ]; then
    LOADGEN=oha
elif command -v wrk >/dev/null || apt_install wrk; then
    LOADGEN=wrk
fi
log "load generator: $LOADGEN"

NGINX=""
if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx-light || apt_install nginx; then
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
[ -x "${NGINX:-/nonexistent}" ] || NGINX=""
log "nginx: ${NGINX:-not available (nginx rows skipped)}"
command -v taskset >/dev/null || apt_install util-linux || true
command -v pgrep >/dev/null || apt_install procps || true

# ---- build -------------------------------------------------------------------------------------
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release (dashbridge, fake_dashscope, bench_client)"
    # The gateway alone first (what ships: the examples' dev-dependencies would add to it).
    cargo build --release --quiet --bin dashbridge
    cargo build --release --quiet --example fake_dashscope --example bench_client
fi
BIN=$ROOT/target/release/dashbridge
FAKE_BIN=$ROOT/target/release/examples/fake_dashscope
CLIENT=$ROOT/target/release/examples/bench_client
for f in "$BIN" "$FAKE_BIN" "$CLIENT"; do [ -x "$f" ] || { echo "missing $f" >&2; exit 1; }; done

# Raise the descriptor limit as far as this machine allows (10k streams need 2 fds each).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)

# ---- helpers -----------------------------------------------------------------------------------
kind_name() { case $1 in ns) echo non-stream ;; s) echo "stream (20 frames)" ;; rs) echo "Responses stream (20 frames)" ;; emb) echo "embeddings (10 inputs)" ;; *) echo "$1" ;; esac; }
CLK_TCK=$(getconf CLK_TCK)
# CPU ticks (utime+stime) summed over the given PIDs.
ticks() {
    local t=0 pid n
    for pid in "$@"; do
        # After "pid (comm) ", utime and stime are fields 12 and 13.
        n=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || n=0
        t=$((t + ${n:-0}))
    done
    echo "$t"
}
status_kib() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# wait_line FILE REGEX TIMEOUT_S → prints the first match
wait_line() {
    local file=$1 re=$2 deadline=$(($(date +%s) + $3))
    while [ "$(date +%s)" -le "$deadline" ]; do
        if grep -Eo "$re" "$file" 2>/dev/null | head -1 | grep -q .; then
            grep -Eo "$re" "$file" | head -1
            return 0
        fi
        sleep 0.05
    done
    return 1
}

start_fake() { # → sets FAKE_PID FAKE_URL
    taskset -c 0 "$FAKE_BIN" --listen 127.0.0.1:0 >"$WORK/fake.out" 2>"$WORK/fake.err" &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
    FAKE_URL=$(wait_line "$WORK/fake.out" 'http://127\.0\.0\.1:[0-9]+' 20) || { echo "fake did not start" >&2; exit 1; }
}

start_dashbridge() { # UPSTREAM_URL LOGNAME [extra env...] → sets DB_PID DB_URL
    local up=$1 name=$2
    shift 2
    env DASHBRIDGE_LISTEN=127.0.0.1:0 DASHBRIDGE_UPSTREAM="$up" DASHSCOPE_API_KEY=sk-bench \
        DASHBRIDGE_UPSTREAM_RETRIES=0 DASHBRIDGE_ACCESS_LOG=false "$@" taskset -c 1 "$BIN" >/dev/null 2>"$WORK/$name.err" &
    DB_PID=$!
    PIDS+=("$DB_PID")
    DB_URL=$(wait_line "$WORK/$name.err" 'http://127\.0\.0\.1:[0-9]+' 20) || { echo "dashbridge did not start" >&2; cat "$WORK/$name.err" >&2; exit 1; }
}

start_nginx() { # → sets NGINX_PID (worker) NGINX_MASTER NGINX_URL
    local port
    port=$("$CLIENT" free-port)
    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream fake { server ${FAKE_URL#http://}; keepalive 256; }
    server {
        listen 127.0.0.1:$port;
        keepalive_requests 1000000;
        location / {
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }
    }
}
EOF
    taskset -c 1 "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" 2>"$WORK/nginx/stderr" &
    NGINX_MASTER=$!
    PIDS+=("$NGINX_MASTER")
    NGINX_URL=http://127.0.0.1:$port
    for _ in $(seq 100); do
        NGINX_PID=$(pgrep -P "$NGINX_MASTER" | head -1 || true)
        [ -n "$NGINX_PID" ] && curl_ok "$NGINX_URL/healthz-any" && return 0
        sleep 0.05
    done
    echo "nginx did not start" >&2
    cat "$WORK/nginx/stderr" "$WORK/nginx/error.log" >&2 || true
    NGINX=""
}

# Any HTTP answer on URL (no curl needed: bash /dev/tcp).
curl_ok() {
    local hostport=${1#http://}
    hostport=${hostport%%/*}
    (exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && head -c 12 <&3 | grep -q HTTP) 2>/dev/null
}

# ---- request bodies ----------------------------------------------------------------------------
SYS='{"role":"system","content":"You are a helpful assistant."}'
cat >"$WORK/openai.json" <<EOF
{"model":"qwen-plus","messages":[$SYS,{"role":"user","content":"Who are you? scenario:text"}]}
EOF
cat >"$WORK/openai-stream.json" <<EOF
{"model":"qwen-plus","stream":true,"messages":[$SYS,{"role":"user","content":"Tell me about the fox. scenario:stream20"}]}
EOF
cat >"$WORK/openai-slow.json" <<EOF
{"model":"qwen-plus","stream":true,"messages":[$SYS,{"role":"user","content":"Slowly, please. scenario:slow"}]}
EOF
cat >"$WORK/openai-idle.json" <<EOF
{"model":"qwen-plus","stream":true,"messages":[$SYS,{"role":"user","content":"Hold the line."}]}
EOF
# What dashbridge sends upstream for the same requests (native shape).
cat >"$WORK/native.json" <<EOF
{"model":"qwen-plus","input":{"messages":[$SYS,{"role":"user","content":"Who are you? scenario:text"}]},"parameters":{"result_format":"message"}}
EOF
# The Responses row: the same 20-frame upstream stream, asked for on /v1/responses (dashbridge
# only): 20 frames become 2 + 2 + 19 + 3 + 1 = 27 Responses events.
cat >"$WORK/openai-responses-stream.json" <<EOF
{"model":"qwen-plus","stream":true,"instructions":"You are a helpful assistant.","input":"Tell me about the fox. scenario:stream20"}
EOF
cat >"$WORK/native-stream.json" <<EOF
{"model":"qwen-plus","input":{"messages":[$SYS,{"role":"user","content":"Tell me about the fox. scenario:stream20"}]},"parameters":{"result_format":"message","incremental_output":true}}
EOF
cat >"$WORK/native-slow.json" <<EOF
{"model":"qwen-plus","input":{"messages":[$SYS,{"role":"user","content":"Slowly, please. scenario:slow"}]},"parameters":{"result_format":"message","incremental_output":true}}
EOF
# Embeddings: 10 inputs (one native call at the v4 row limit), 1024-float vectors; base64 out,
# as the openai SDKs request by default (dashbridge re-encodes every float).
python3 - "$WORK" <<'PY'
import json, sys
texts = [f"Benchmark passage {i}: the wind is swift, the sky is high, the apes cry mournfully." for i in range(10)]
json.dump({"model": "text-embedding-v4", "input": texts, "encoding_format": "base64"}, open(f"{sys.argv[1]}/openai-emb.json", "w"))
json.dump({"model": "text-embedding-v4", "input": {"texts": texts}}, open(f"{sys.argv[1]}/native-emb.json", "w"))
PY
NATIVE_PATH=/api/v1/services/aigc/text-generation/generation
CHAT_PATH=/v1/chat/completions
RESPONSES_PATH=/v1/responses
EMBED_NATIVE_PATH=/api/v1/services/embeddings/text-embedding/text-embedding
EMBED_PATH=/v1/embeddings

# target → URL path, body, extra headers
target_args() { # TARGET KIND(ns|s|slow) → sets T_URL T_BODY T_HDR (array)
    local target=$1 kind=$2 base
    T_HDR=()
    case $target in
        direct) base=$FAKE_URL ;;
        nginx) base=$NGINX_URL ;;
        dashbridge) base=$DB_URL ;;
    esac
    if [ "$target" = dashbridge ]; then
        T_URL=$base$CHAT_PATH
        case $kind in
            ns) T_BODY=$WORK/openai.json ;;
            s) T_BODY=$WORK/openai-stream.json ;;
            rs) T_BODY=$WORK/openai-responses-stream.json; T_URL=$base$RESPONSES_PATH ;;
            slow) T_BODY=$WORK/openai-slow.json ;;
            emb) T_BODY=$WORK/openai-emb.json; T_URL=$base$EMBED_PATH ;;
        esac
    else
        T_URL=$base$NATIVE_PATH
        T_HDR=("Authorization: Bearer sk-bench")
        case $kind in
            ns) T_BODY=$WORK/native.json ;;
            emb) T_BODY=$WORK/native-emb.json; T_URL=$base$EMBED_NATIVE_PATH ;;
            s) T_BODY=$WORK/native-stream.json; T_HDR+=("X-DashScope-SSE: enable" "Accept: text/event-stream") ;;
            slow) T_BODY=$WORK/native-slow.json; T_HDR+=("X-DashScope-SSE: enable" "Accept: text/event-stream") ;;
        esac
    fi
}

sut_pids() { # TARGET → PIDs whose CPU is the system under test
    case $1 in
        direct) echo "$FAKE_PID" ;;
        nginx) echo "$NGINX_PID $NGINX_MASTER" ;;
        dashbridge) echo "$DB_PID" ;;
    esac
}

# Load run: load TARGET KIND MODE(max|rate) OUTFILE → JSON {rps, ok, p50_ms, p99_ms, ..., cpu_us_per_req, fake_us_per_req, core_busy}
load() {
    local target=$1 kind=$2 mode=$3 out=$4 dur t0 t1 f0 f1 w0 w1 raw
    target_args "$target" "$kind"
    local pids
    pids=$(sut_pids "$target")
    dur=$DUR
    [ "$mode" = rate ] && dur=$LAT_DUR
    raw=$out.raw
    t0=$(ticks $pids); f0=$(ticks "$FAKE_PID"); w0=$(date +%s%N)
    if [ "$LOADGEN" = oha ]; then
        local h=() x
        for x in "${T_HDR[@]}"; do h+=(-H "$x"); done
        local extra=(-c "${LOAD_C:-$CONC}")
        [ "$mode" = rate ] && extra=(-c 32 -q "$RATE" --latency-correction)
        timeout $((dur + 60)) taskset -c 0 "$OHA" --no-tui --output-format json -w -z "${dur}s" "${extra[@]}" \
            -m POST -H "Content-Type: application/json" "${h[@]}" -D "$T_BODY" "$T_URL" >"$raw" 2>"$raw.err" || true
    else
        local lua=$WORK/wrk-$target-$kind.lua x
        {
            echo 'wrk.method = "POST"'
            printf 'wrk.body = [==[%s]==]\n' "$(cat "$T_BODY")"
            echo 'wrk.headers["Content-Type"] = "application/json"'
            for x in "${T_HDR[@]}"; do printf 'wrk.headers["%s"] = "%s"\n' "${x%%: *}" "${x#*: }"; done
            cat <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format('{"ok":%d,"errors":%d,"secs":%f,"p50":%f,"p90":%f,"p99":%f,"p999":%f}\n',
    summary.requests - summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3))
end
LUA
        } >"$lua"
        local c=${LOAD_C:-$CONC}
        [ "$mode" = rate ] && c=1 # wrk cannot fix a rate: c=1 closed loop instead
        timeout $((dur + 60)) taskset -c 0 wrk -t1 -c "$c" -d "${dur}s" -s "$lua" "$T_URL" >"$raw" 2>"$raw.err" || true
    fi
    t1=$(ticks $pids); f1=$(ticks "$FAKE_PID"); w1=$(date +%s%N)
    python3 - "$LOADGEN" "$raw" "$((t1 - t0))" "$((f1 - f0))" "$CLK_TCK" "$((w1 - w0))" "$target" >"$out" <<'PY'
import json, sys
gen, raw, dt, df, hz, wall_ns, target = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
r = {}
try:
    if gen == "oha":
        d = json.load(open(raw))
        s = d["summary"]
        codes = d.get("statusCodeDistribution", {})
        ok = int(codes.get("200", 0))
        total = sum(int(v) for v in codes.values())
        lp = d.get("latencyPercentiles", {})
        r = {"ok": ok, "non200": total - ok, "errors": sum(d.get("errorDistribution", {}).values()),
             "rps": ok / s["total"] if s.get("total") else 0,
             "p50_ms": lp.get("p50", 0) * 1e3, "p90_ms": lp.get("p90", 0) * 1e3,
             "p99_ms": lp.get("p99", 0) * 1e3, "p999_ms": lp.get("p99.9", 0) * 1e3}
    else:
        d = json.loads(open(raw).read().strip().splitlines()[-1])
        r = {"ok": d["ok"], "non200": 0, "errors": d["errors"], "rps": d["ok"] / d["secs"],
             "p50_ms": d["p50"], "p90_ms": d["p90"], "p99_ms": d["p99"], "p999_ms": d["p999"]}
except Exception as e:  # a failed run is reported, not fatal
    r = {"ok": 0, "error": f"{type(e).__name__}: {e}"}
ok = r.get("ok", 0)
cpu_s = dt / hz
r["cpu_s"] = cpu_s
r["cpu_us_per_req"] = cpu_s * 1e6 / ok if ok else None
r["fake_us_per_req"] = (df / hz) * 1e6 / ok if ok else None
r["core_busy"] = cpu_s / (wall_ns / 1e9) if wall_ns else None
print(json.dumps(r))
PY
}

# ---- 1. throughput, CPU per request, latency at a fixed rate -----------------------------------
if want main; then
log "starting the fake (core 0), nginx and dashbridge (core 1)"
start_fake
start_dashbridge "$FAKE_URL" db-main
DB_RSS_IDLE=$(status_kib "$DB_PID" VmRSS)
if [ -n "$NGINX" ]; then start_nginx; fi
TARGETS=(direct)
[ -n "$NGINX" ] && TARGETS+=(nginx)
TARGETS+=(dashbridge)
rec meta "$(python3 -c 'import json,sys; print(json.dumps({"targets": sys.argv[1].split(), "loadgen": sys.argv[2], "nofile": int(sys.argv[3])}))' "${TARGETS[*]}" "$LOADGEN" "$NOFILE")"

client_stream() { # TARGET KIND N C OUT
    local target=$1 kind=$2 n=$3 c=$4 out=$5 h=() x
    target_args "$target" "$kind"
    for x in "${T_HDR[@]}"; do h+=(--header "$x"); done
    timeout 120 taskset -c 0 "$CLIENT" stream --url "$T_URL" --body "$T_BODY" "${h[@]}" -n "$n" -c "$c" >"$out" 2>"$out.err" || echo '{}' >"$out"
}

for t in "${TARGETS[@]}"; do
    client_stream "$t" ns 20 1 "$WORK/warm-$t-ns.json"
    client_stream "$t" s 20 1 "$WORK/warm-$t-s.json"
    client_stream "$t" emb 20 1 "$WORK/warm-$t-emb.json"
    [ "$(J "$WORK/warm-$t-ns.json" ok)" = 20 ] && [ "$(J "$WORK/warm-$t-s.json" ok)" = 20 ] && [ "$(J "$WORK/warm-$t-emb.json" ok)" = 20 ] || {
        echo "target $t does not answer 200: see $WORK" >&2
        cat "$WORK/warm-$t-ns.json" "$WORK/warm-$t-s.json" "$WORK/warm-$t-emb.json" >&2
        exit 1
    }
done
client_stream dashbridge rs 20 1 "$WORK/warm-dashbridge-rs.json"
[ "$(J "$WORK/warm-dashbridge-rs.json" ok)" = 20 ] || {
    echo "dashbridge does not answer 200 on $RESPONSES_PATH: see $WORK" >&2
    cat "$WORK/warm-dashbridge-rs.json" >&2
    exit 1
}
rec warm_rs "$(cat "$WORK/warm-dashbridge-rs.json")"

if [ "$LOADGEN" != none ]; then
    for r in $(seq "$REPEATS"); do
        for k in ns s emb; do
            for t in "${TARGETS[@]}"; do
                log "max throughput c=$CONC run $r/$REPEATS: $t $(kind_name "$k") ${DUR}s"
                load "$t" "$k" max "$WORK/max-$t-$k-$r.json"
                rec "max/$t/$k/$r" "$(cat "$WORK/max-$t-$k-$r.json")"
            done
        done
        # Responses stream: dashbridge only (no native counterpart), against its chat stream row.
        if [[ " ${TARGETS[*]} " == *" dashbridge "* ]]; then
            log "max throughput c=$CONC run $r/$REPEATS: dashbridge $(kind_name rs) ${DUR}s"
            load dashbridge rs max "$WORK/max-dashbridge-rs-$r.json"
            rec "max/dashbridge/rs/$r" "$(cat "$WORK/max-dashbridge-rs-$r.json")"
        fi
    done
    for k in ns s; do
        for t in "${TARGETS[@]}"; do
            log "fixed rate $RATE req/s: $t $(kind_name "$k") ${LAT_DUR}s"
            load "$t" "$k" rate "$WORK/rate-$t-$k.json"
            rec "rate/$t/$k" "$(cat "$WORK/rate-$t-$k.json")"
        done
    done
else
    log "no load generator: throughput/latency rows skipped"
fi

# ---- 2. stream shape and TTFB (sequential, c=1) ------------------------------------------------
for t in "${TARGETS[@]}"; do
    log "stream20 chunks + TTFB, $TTFB_N sequential requests: $t"
    client_stream "$t" s "$TTFB_N" 1 "$WORK/ttfb-$t.json"
    rec "ttfb/$t" "$(cat "$WORK/ttfb-$t.json")"
    log "non-stream TTFB, $TTFB_N sequential requests: $t"
    client_stream "$t" ns "$TTFB_N" 1 "$WORK/ttfb-ns-$t.json"
    rec "ttfbns/$t" "$(cat "$WORK/ttfb-ns-$t.json")"
done
for t in "${TARGETS[@]}"; do
    log "paced stream (fake scenario:slow, 200 ms between frames), 3 requests: $t"
    client_stream "$t" slow 3 1 "$WORK/slow-$t.json"
    rec "slow/$t" "$(cat "$WORK/slow-$t.json")"
done

# Peak memory of the processes that served everything above (c=$CONC peak), before the
# paced c=$PACED_C run below.
rec rss "$(python3 -c 'import json,sys; print(json.dumps({"db_idle": int(sys.argv[1]), "db_hwm": int(sys.argv[2]), "nginx_hwm": int(sys.argv[3] or 0), "fake_hwm": int(sys.argv[4])}))' \
    "$DB_RSS_IDLE" "$(status_kib "$DB_PID" VmHWM)" "$( [ -n "$NGINX" ] && status_kib "$NGINX_PID" VmHWM || echo 0)" "$(status_kib "$FAKE_PID" VmHWM)")"
if [ "$LOADGEN" != none ]; then
    # Paced streams (8 frames 200 ms apart, c=$PACED_C): every frame is its own write for every
    # proxy here (nothing to coalesce), so this compares the per-frame cost like for like.
    for t in "${TARGETS[@]}"; do
        log "paced streams c=$PACED_C: $t ${DUR}s"
        LOAD_C=$PACED_C load "$t" slow max "$WORK/paced-$t.json"
        rec "paced/$t" "$(cat "$WORK/paced-$t.json")"
    done
    rec rss_paced "$(python3 -c 'import json,sys; print(json.dumps({"db_hwm": int(sys.argv[1]), "nginx_hwm": int(sys.argv[2] or 0), "fake_hwm": int(sys.argv[3])}))' \
        "$(status_kib "$DB_PID" VmHWM)" "$( [ -n "$NGINX" ] && status_kib "$NGINX_PID" VmHWM || echo 0)" "$(status_kib "$FAKE_PID" VmHWM)")"
fi
stop_pid "$DB_PID"
[ -n "$NGINX" ] && stop_pid "$NGINX_MASTER"
stop_pid "$FAKE_PID"
fi
want main || rec meta "{\"targets\": [\"dashbridge\"], \"loadgen\": \"$LOADGEN\", \"nofile\": $NOFILE, \"only\": \"$BENCH_ONLY\"}"
[ -n "${BENCH_ONLY:-}" ] && [ -z "${BENCH_OUT:-}" ] && OUT=$WORK/RESULTS-partial.md

# ---- 3. many idle streams ----------------------------------------------------------------------
if want idle; then
# Three runs, each with a fresh slow upstream and a fresh dashbridge (upstream holds each stream
# between its two frames):
# - idle: N streams, plain HTTP/1.1 upstream (one upstream connection per stream);
# - idle_tls: N streams, TLS upstream speaking HTTP/2 (ALPN h2, as DashScope's HTTPS endpoint
#   can) that admits all N on one connection (SETTINGS_MAX_CONCURRENT_STREAMS = N);
# - idle_h2cap: 1,000 streams, the same TLS upstream announcing a realistic limit
#   (BENCH_H2_MAX_STREAMS, default 250), each held BENCH_H2CAP_HOLD_MS: does the client open
#   more connections, or do streams queue?
# Each counts dashbridge's ESTABLISHED connections to the upstream port while streams are held.
H2_MAX=${BENCH_H2_MAX_STREAMS:-250}
H2CAP_HOLD_MS=${BENCH_H2CAP_HOLD_MS:-2000}
idle_run() { # KEY N HOLD_MS H2_MAX_STREAMS (0 = plain HTTP/1.1)
    local key=$1 n=$2 hold=$3 maxs=$4 tls=() ca=() url base
    if [ "$maxs" != 0 ]; then
        tls=(--tls --cert-out "$WORK/$key-ca.pem" --h2-max-streams "$maxs")
        ca=(DASHBRIDGE_UPSTREAM_CA_FILE="$WORK/$key-ca.pem" DASHBRIDGE_UPSTREAM_HTTP=auto)
    fi
    taskset -c 0 "$CLIENT" slow-upstream --listen 127.0.0.1:0 --n "$n" --delay-ms "$hold" "${tls[@]}" >"$WORK/$key-up.out" 2>"$WORK/$key-up.err" &
    SLOW_PID=$!
    PIDS+=("$SLOW_PID")
    url=$(wait_line "$WORK/$key-up.out" 'https?://127\.0\.0\.1:[0-9]+' 20) || { echo "slow upstream did not start" >&2; exit 1; }
    start_dashbridge "$url" "db-$key" DASHBRIDGE_MAX_CONCURRENCY=$((n + 100)) DASHBRIDGE_MAX_CONNECTIONS=$((n + 100)) "${ca[@]}"
    base=$(status_kib "$DB_PID" VmRSS)
    timeout $((hold / 1000 + 150)) taskset -c 0 "$CLIENT" idle --url "$DB_URL$CHAT_PATH" --body "$WORK/openai-idle.json" \
        -n "$n" --pid "$DB_PID" --upstream-port "${url##*:}" --timeout-secs 90 >"$WORK/$key.json" 2>"$WORK/$key.err" || echo '{}' >"$WORK/$key.json"
    rec "$key" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["base_kib"]=int(sys.argv[2]); d["hwm_kib_end"]=int(sys.argv[3]); d["h2_max_streams"]=int(sys.argv[4]); d["hold_ms"]=int(sys.argv[5]); print(json.dumps(d))' \
        "$WORK/$key.json" "$base" "$(status_kib "$DB_PID" VmHWM)" "$maxs" "$hold")"
    stop_pid "$DB_PID"
    stop_pid "$SLOW_PID"
}
# dashbridge holds 2 descriptors per stream (client + upstream): cap N to what the limit allows.
N=$IDLE_STREAMS
MAXN=$(((NOFILE - 200) / 2))
[ "$N" -gt "$MAXN" ] && N=$MAXN
log "idle streams: $N concurrent (descriptor limit $NOFILE), upstream holds each ${IDLE_HOLD_MS} ms: plain HTTP/1.1 upstream"
idle_run idle "$N" "$IDLE_HOLD_MS" 0
log "idle streams: $N concurrent, TLS + HTTP/2 upstream (all streams admitted)"
idle_run idle_tls "$N" "$IDLE_HOLD_MS" "$N"
log "idle streams: 1000 concurrent, TLS + HTTP/2 upstream announcing $H2_MAX streams per connection, each held ${H2CAP_HOLD_MS} ms"
idle_run idle_h2cap 1000 "$H2CAP_HOLD_MS" "$H2_MAX"
fi

# ---- 3b. conversation state (Responses, non-stream) ---------------------------------------------
# A stateless turn (`store: false`) against a stateful one (`previous_response_id` of a stored
# response, `store` true: one chain read and one record written per turn). Embedded store: CPU per
# request at c=$CONC (the gateway's core). Redis (a local redis-server on core 0, no persistence):
# latency at c=1, $TTFB_N sequential requests per run, 3 runs interleaved.
if want state; then
log "conversation state: embedded store (CPU) and local Redis (latency)"
start_fake
start_dashbridge "$FAKE_URL" db-state
DBM_PID=$DB_PID DBM_URL=$DB_URL
REDIS_BIN=$(command -v redis-server || { apt_install redis-server && command -v redis-server; } || true)
DBR_URL=""
if [ -n "$REDIS_BIN" ]; then
    REDIS_PORT=$("$CLIENT" free-port)
    mkdir -p "$WORK/redis"
    taskset -c 0 "$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save "" --appendonly no >"$WORK/redis.out" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    wait_line "$WORK/redis.out" 'Ready to accept connections' 20 >/dev/null || { echo "redis-server did not start" >&2; exit 1; }
    start_dashbridge "$FAKE_URL" db-redis DASHBRIDGE_STATE_URL="redis://127.0.0.1:$REDIS_PORT"
    DBR_PID=$DB_PID DBR_URL=$DB_URL
else
    log "redis-server not available: the Redis rows are skipped"
fi
# Stored responses belong to the caller's bearer key (none sent: nothing is stored), so every
# request here carries one. The fake's answers have fixed request ids, hence fixed response ids:
# the seed (scenario:echo) is never overwritten, and every stateful turn (scenario:text) reads
# the one-turn chain of the seed and writes its own record (the same id each time, replaced).
STATE_AUTH="Authorization: Bearer sk-bench-client"
# store_seed URL → the id of a stored response (the chain every stateful turn continues).
store_seed() {
    python3 - "$1$RESPONSES_PATH" <<'PY'
import json, sys, urllib.request
body = json.dumps({"model": "qwen-plus", "input": "Remember the fox. scenario:echo"}).encode()
req = urllib.request.Request(sys.argv[1], body, {"content-type": "application/json", "authorization": "Bearer sk-bench-client"})
print(json.load(urllib.request.urlopen(req, timeout=30))["id"])
PY
}
turn_body() { # OUT [PREVIOUS_ID]
    python3 - "$@" <<'PY'
import json, sys
b = {"model": "qwen-plus", "instructions": "You are a helpful assistant.", "input": "Who are you? scenario:text"}
if len(sys.argv) > 2:
    b["previous_response_id"] = sys.argv[2]
else:
    b["store"] = False
json.dump(b, open(sys.argv[1], "w"))
PY
}
turn_body "$WORK/resp-stateless.json"
turn_body "$WORK/resp-stateful-mem.json" "$(store_seed "$DBM_URL")"
[ -n "$DBR_URL" ] && turn_body "$WORK/resp-stateful-redis.json" "$(store_seed "$DBR_URL")"
state_cpu() { # NAME BODY RUN
    local out=$WORK/state-$1-$3.json raw=$WORK/state-$1-$3.raw t0 t1 r0 r1 w0 w1
    t0=$(ticks "$DBM_PID"); w0=$(date +%s%N)
    timeout $((DUR + 60)) taskset -c 0 "$OHA" --no-tui --output-format json -w -z "${DUR}s" -c "$CONC" \
        -m POST -H "Content-Type: application/json" -H "$STATE_AUTH" -D "$2" "$DBM_URL$RESPONSES_PATH" >"$raw" 2>"$raw.err" || true
    t1=$(ticks "$DBM_PID"); w1=$(date +%s%N)
    python3 - "$raw" "$((t1 - t0))" "$CLK_TCK" "$((w1 - w0))" >"$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ok = int(d.get("statusCodeDistribution", {}).get("200", 0))
cpu = int(sys.argv[2]) / int(sys.argv[3])
print(json.dumps({"ok": ok, "cpu_us_per_req": cpu * 1e6 / ok if ok else None, "rps": ok / d["summary"]["total"],
                  "core_busy": cpu / (int(sys.argv[4]) / 1e9)}))
PY
    rec "state/cpu/$1/$3" "$(cat "$out")"
}
state_latency() { # NAME BODY RUN
    local out=$WORK/state-lat-$1-$3.json t0 t1
    t0=$(ticks "$REDIS_PID")
    timeout 300 taskset -c 0 "$CLIENT" stream --url "$DBR_URL$RESPONSES_PATH" --body "$2" --header "$STATE_AUTH" -n "$TTFB_N" -c 1 >"$out" 2>"$out.err" || echo '{}' >"$out"
    t1=$(ticks "$REDIS_PID")
    rec "state/lat/$1/$3" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["redis_cpu_us_per_req"]=int(sys.argv[2])/int(sys.argv[3])*1e6/max(d.get("ok") or 0,1); print(json.dumps(d))' "$out" "$((t1 - t0))" "$CLK_TCK")"
}
for u in "$DBM_URL" ${DBR_URL:+"$DBR_URL"}; do
    body=$WORK/resp-stateful-mem.json
    [ "$u" = "$DBR_URL" ] && body=$WORK/resp-stateful-redis.json
    taskset -c 0 "$CLIENT" stream --url "$u$RESPONSES_PATH" --body "$body" --header "$STATE_AUTH" -n 5 -c 1 >"$WORK/state-warm.json" 2>&1 || true
    [ "$(J "$WORK/state-warm.json" ok)" = 5 ] || { echo "a stateful turn on $u does not answer 200: see $WORK" >&2; cat "$WORK/state-warm.json" >&2; exit 1; }
done
for r in $(seq "$REPEATS"); do
    if [ "$LOADGEN" = oha ]; then
        log "state run $r/$REPEATS: embedded store, c=$CONC ${DUR}s, stateless then stateful"
        state_cpu stateless "$WORK/resp-stateless.json" "$r"
        state_cpu stateful "$WORK/resp-stateful-mem.json" "$r"
    fi
    if [ -n "$DBR_URL" ]; then
        log "state run $r/$REPEATS: Redis store, $TTFB_N sequential turns, stateless then stateful"
        state_latency stateless "$WORK/resp-stateless.json" "$r"
        state_latency stateful "$WORK/resp-stateful-redis.json" "$r"
    fi
done
stop_pid "$DBM_PID"
[ -n "$DBR_URL" ] && { stop_pid "$DBR_PID"; stop_pid "$REDIS_PID"; }
stop_pid "$FAKE_PID"
fi

# ---- 4. start-up, binary size ------------------------------------------------------------------
if want startup; then
log "start-up: spawn → first 200 from /healthz, 10 runs"
start_fake
env DASHBRIDGE_UPSTREAM="$FAKE_URL" DASHSCOPE_API_KEY=sk-bench taskset -c 1 "$CLIENT" startup --exe "$BIN" --runs 10 >"$WORK/startup.json" 2>"$WORK/startup.err" || echo '{}' >"$WORK/startup.json"
rec startup "$(cat "$WORK/startup.json")"
stop_pid "$FAKE_PID"
rec binary "$(stat -c %s "$BIN")"
fi

# ---- report ------------------------------------------------------------------------------------
loadgen_version() {
    case $LOADGEN in
        oha) { "$OHA" --version 2>/dev/null || true; } | head -1 ;;
        wrk) { wrk -v 2>&1 || true; } | head -1 | cut -d' ' -f1-2 ;;
        *) echo "no load generator" ;;
    esac
}
CPU_MODEL=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
python3 - "$RES" "$OUT" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" "$CPU_MODEL" "$(uname -sr)" \
    "$DUR" "$LAT_DUR" "$RATE" "$REPEATS" "$CONC" "$TTFB_N" "$IDLE_HOLD_MS" \
    "$(loadgen_version)" "$( [ -n "$NGINX" ] && "$NGINX" -v 2>&1 | head -1 || echo no nginx)" "$(rustc --version 2>/dev/null || echo rustc)" \
    "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "$LOAD_START" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(($(date -u +%s) - STARTED_AT))" "$PACED_C" <<'PY'
import json, statistics, sys

(res, out, date, nproc, cpu, kernel, dur, lat_dur, rate, repeats, conc, ttfb_n, hold_ms,
 loadgen_v, nginx_v, rustc_v, commit, load_start, load_end, elapsed, paced_c) = sys.argv[1:22]
R = {}
for line in open(res):
    d = json.loads(line)
    R[d["k"]] = d["v"]
meta = R.get("meta", {})
targets = meta.get("targets", [])
loadgen = meta.get("loadgen", "none")
cols = ["direct", "nginx", "dashbridge"]
names = {"direct": "direct → fake", "nginx": "nginx → fake", "dashbridge": "dashbridge → fake"}


def med(key_prefix, field):
    vals = [v.get(field) for k, v in R.items() if k.startswith(key_prefix + "/") and v.get(field) is not None]
    return statistics.median(vals) if vals else None


def all_vals(key_prefix, field):
    return [v.get(field) for k, v in sorted(R.items()) if k.startswith(key_prefix + "/") and v.get(field) is not None]


def g(key, *path):
    d = R.get(key)
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def f(x, fmt="{:.1f}"):
    return "n/a" if x is None else fmt.format(x)


def ratio(a, b):
    return None if a is None or not b else a / b


rows = []
def row(label, fn, extra=""):
    cells = [fn(t) if t in targets else "skipped" for t in cols]
    rows.append(f"| {label} | " + " | ".join(cells) + f" | {extra} |")

for k, kn in (("ns", "non-stream"), ("s", "stream (20 frames)"), ("emb", "embeddings (10 inputs, base64 out)")):
    row(f"{kn}: max throughput, c={conc}, req/s (median of {repeats})",
        lambda t: f(med(f"max/{t}/{k}", "rps"), "{:,.0f}"),
        "dashbridge/nginx " + f(ratio(med(f"max/dashbridge/{k}", "rps"), med(f"max/nginx/{k}", "rps")), "{:.2f}×"))
    row(f"{kn}: CPU µs per request of the proxy process (median; runs)",
        lambda t: f(med(f"max/{t}/{k}", "cpu_us_per_req")) + " (" + ", ".join(f(v) for v in all_vals(f"max/{t}/{k}", "cpu_us_per_req")) + ")",
        "dashbridge/nginx **" + f(ratio(med(f"max/dashbridge/{k}", "cpu_us_per_req"), med(f"max/nginx/{k}", "cpu_us_per_req")), "{:.2f}×") + "**")
    row(f"{kn}: busy share of its core during the run",
        lambda t: f((med(f"max/{t}/{k}", "core_busy") or 0) * 100, "{:.0f} %"),
        "fake µs/req when proxied: " + ", ".join(f"{t} {f(med(f'max/{t}/{k}', 'fake_us_per_req'))}" for t in targets))
for k, kn in (("ns", "non-stream"), ("s", "stream (20 frames)")):
    row(f"{kn}: latency at {rate} req/s, p50 / p99 / p99.9 ms",
        lambda t: f(g(f"rate/{t}/{k}", "p50_ms"), "{:.3f}") + " / " + f(g(f"rate/{t}/{k}", "p99_ms"), "{:.3f}") + " / " + f(g(f"rate/{t}/{k}", "p999_ms"), "{:.3f}"),
        "added by dashbridge p50 " + f(None if g(f"rate/dashbridge/{k}", "p50_ms") is None else g(f"rate/dashbridge/{k}", "p50_ms") - (g(f"rate/direct/{k}", "p50_ms") or 0), "{:+.3f} ms")
        + ", p99 " + f(None if g(f"rate/dashbridge/{k}", "p99_ms") is None else g(f"rate/dashbridge/{k}", "p99_ms") - (g(f"rate/direct/{k}", "p99_ms") or 0), "{:+.3f} ms"))
for key, kn in (("ttfbns", "non-stream"), ("ttfb", "stream (20 frames)")):
    row(f"{kn}: time to first body byte, c=1, p50 / p99 µs ({ttfb_n} requests)",
        lambda t: f(g(f"{key}/{t}", "ttfb_us", "p50"), "{:.0f}") + " / " + f(g(f"{key}/{t}", "ttfb_us", "p99"), "{:.0f}"),
        "added p50 " + f(None if g(f"{key}/dashbridge", "ttfb_us", "p50") is None else g(f"{key}/dashbridge", "ttfb_us", "p50") - (g(f"{key}/direct", "ttfb_us", "p50") or 0), "{:+.0f} µs"))
row("stream (20 frames): body chunks / SSE events per response (min–max)",
    lambda t: f"{g(f'ttfb/{t}', 'chunks_per_response', 'min')}–{g(f'ttfb/{t}', 'chunks_per_response', 'max')} / {g(f'ttfb/{t}', 'events_per_response', 'min')}–{g(f'ttfb/{t}', 'events_per_response', 'max')}",
    "responses with exactly one event per chunk: " + ", ".join(f"{t} {g(f'ttfb/{t}', 'responses_with_one_event_per_chunk')}/{g(f'ttfb/{t}', 'ok')}" for t in targets))
row("paced stream (upstream frames 200 ms apart): gap between chunks p50 / max ms",
    lambda t: f((g(f"slow/{t}", "gap_us", "p50") or 0) / 1e3, "{:.1f}") + " / " + f((g(f"slow/{t}", "gap_us", "max") or 0) / 1e3, "{:.1f}"),
    "chunks/events per response: " + ", ".join(f"{t} {g(f'slow/{t}', 'chunks_per_response', 'median')}/{g(f'slow/{t}', 'events_per_response', 'median')}" for t in targets))
row(f"paced streams (8 frames 200 ms apart), c={paced_c}: CPU µs per stream (streams served)",
    lambda t: f(g(f"paced/{t}", "cpu_us_per_req")) + f" ({g(f'paced/{t}', 'ok')})",
    "dashbridge/nginx **" + f(ratio(g("paced/dashbridge", "cpu_us_per_req"), g("paced/nginx", "cpu_us_per_req")), "{:.2f}×") + "** (no coalescing possible: one write per frame for every proxy)")
rs_cpu, s_cpu = med("max/dashbridge/rs", "cpu_us_per_req"), med("max/dashbridge/s", "cpu_us_per_req")
row(f"Responses stream (20 frames → {g('warm_rs', 'events_per_response', 'min')} events) on /v1/responses: CPU µs per stream (median; runs)",
    lambda t: (f(rs_cpu) + " (" + ", ".join(f(v) for v in all_vals("max/dashbridge/rs", "cpu_us_per_req")) + ")") if t == "dashbridge" else "—",
    "Responses/chat stream **" + f(ratio(rs_cpu, s_cpu), "{:.2f}×") + "**")
st_cpu = {w: med(f"state/cpu/{w}", "cpu_us_per_req") for w in ("stateless", "stateful")}
def lat_field(w, q):
    vals = [v.get("total_us", {}).get(q) for k, v in sorted(R.items()) if k.startswith(f"state/lat/{w}/") and v.get("total_us")]
    return statistics.median(vals) if vals else None
st_add_cpu = None if None in st_cpu.values() else st_cpu["stateful"] - st_cpu["stateless"]
st_add_p50 = None if lat_field("stateful", "p50") is None or lat_field("stateless", "p50") is None else (lat_field("stateful", "p50") - lat_field("stateless", "p50")) / 1e3
row(f"Responses non-stream, embedded store, c={conc}: CPU µs per turn, stateless / stateful (median; runs)",
    lambda t: (f(st_cpu["stateless"]) + " / " + f(st_cpu["stateful"]) + " (" + ", ".join(f(v) for v in all_vals("state/cpu/stateless", "cpu_us_per_req")) + " / "
               + ", ".join(f(v) for v in all_vals("state/cpu/stateful", "cpu_us_per_req")) + ")") if t == "dashbridge" else "—",
    "a stateful turn (chain read + record written) adds " + f(st_add_cpu, "{:+.1f} µs") + " of CPU")
row(f"Responses non-stream, local Redis store, c=1 ({ttfb_n} turns × {repeats}): latency p50 / p99 µs, stateless → stateful",
    lambda t: (f(lat_field("stateless", "p50"), "{:.0f}") + " / " + f(lat_field("stateless", "p99"), "{:.0f}") + " → "
               + f(lat_field("stateful", "p50"), "{:.0f}") + " / " + f(lat_field("stateful", "p99"), "{:.0f}")) if t == "dashbridge" else "—",
    "added p50 " + f(st_add_p50, "{:+.3f} ms") + "; redis-server CPU per stateful turn " + f(med("state/lat/stateful", "redis_cpu_us_per_req"), "{:.1f} µs"))
rss = R.get("rss", {})
row(f"peak RSS (VmHWM) after the c={conc} runs, fixed-rate runs and TTFB runs, MiB",
    lambda t: f({"direct": rss.get("fake_hwm"), "nginx": rss.get("nginx_hwm"), "dashbridge": rss.get("db_hwm")}[t] / 1024 if {"direct": rss.get("fake_hwm"), "nginx": rss.get("nginx_hwm"), "dashbridge": rss.get("db_hwm")}[t] else None, "{:.1f}"),
    "dashbridge RSS right after start-up " + f((rss.get("db_idle") or 0) / 1024, "{:.1f} MiB"))

rp = R.get("rss_paced", {})
if rp:
    row(f"peak RSS (VmHWM) after the paced c={paced_c} run too, MiB",
        lambda t: f({"direct": rp.get("fake_hwm"), "nginx": rp.get("nginx_hwm"), "dashbridge": rp.get("db_hwm")}[t] / 1024 if {"direct": rp.get("fake_hwm"), "nginx": rp.get("nginx_hwm"), "dashbridge": rp.get("db_hwm")}[t] else None, "{:.1f}"),
        "")
idle = R.get("idle", {})
st = R.get("startup", {})
binary = R.get("binary")

def verdict(ok):
    return "n/a" if ok is None else ("**pass**" if ok else "**FAIL**")

goals = []
for k, kn, lim in (("ns", "non-stream", 1.0), ("s", "20-chunk stream", 1.0), ("emb", "embeddings, 10 inputs (1024 floats each, base64 out)", 1.2)):
    rt = ratio(med(f"max/dashbridge/{k}", "cpu_us_per_req"), med(f"max/nginx/{k}", "cpu_us_per_req"))
    goals.append((f"CPU per request, {kn}", f"≤ {lim}× nginx", f(rt, "{:.2f}× (") + f(med(f"max/dashbridge/{k}", "cpu_us_per_req")) + " vs " + f(med(f"max/nginx/{k}", "cpu_us_per_req")) + " µs)", verdict(None if rt is None else rt <= lim)))
for q, lim in (("p50", 0.1), ("p99", 0.5)):
    a, b = g("rate/dashbridge/ns", f"{q}_ms"), g("rate/direct/ns", f"{q}_ms")
    add = None if a is None or b is None else a - b
    goals.append((f"added latency {q} at {rate} req/s (non-stream)", f"≤ {lim} ms", f(add, "{:+.3f} ms") + ("" if q == "p50" else " (p99s on a shared machine are mostly noise: compare the direct column's own p99)"), verdict(None if add is None else add <= lim)))
ok = g("ttfb/dashbridge", "ok")
one = g("ttfb/dashbridge", "responses_with_one_event_per_chunk")
ev = g("ttfb/dashbridge", "events_per_response", "min")
evmax = g("ttfb/dashbridge", "events_per_response", "max")
goals.append(("every upstream frame → one chunk on the wire", "20 frames → 20 chunks + [DONE]",
               f"{g('ttfb/dashbridge', 'chunks_per_response', 'min')}–{g('ttfb/dashbridge', 'chunks_per_response', 'max')} chunks, {ev}–{evmax} events; {one}/{ok} responses one event per chunk; paced gap p50 " + f((g('slow/dashbridge', 'gap_us', 'p50') or 0) / 1e3, "{:.1f} ms"),
               verdict(None if ok is None else (one == ok and ev == 21 and evmax == 21))))
a, b = g("ttfb/dashbridge", "ttfb_us", "p50"), g("ttfb/direct", "ttfb_us", "p50")
add = None if a is None or b is None else (a - b) / 1e3
goals.append(("TTFB added, p50 (stream)", "≤ 0.1 ms", f(add, "{:+.3f} ms"), verdict(None if add is None else add <= 0.1)))
goals.append(("Responses stream CPU per upstream frame vs chat stream", "≤ 1.25×",
              f(ratio(rs_cpu, s_cpu), "{:.2f}×") + f" ({f(rs_cpu)} vs {f(s_cpu)} µs per 20-frame stream)",
              verdict(None if ratio(rs_cpu, s_cpu) is None else ratio(rs_cpu, s_cpu) <= 1.25)))
goals.append(("stateful Responses turn vs stateless, local Redis: added latency p50", "≤ 1 ms", f(st_add_p50, "{:+.3f} ms"), verdict(None if st_add_p50 is None else st_add_p50 <= 1.0)))
goals.append(("stateful Responses turn vs stateless, embedded store: added CPU", "≤ 50 µs", f(st_add_cpu, "{:+.1f} µs"), verdict(None if st_add_cpu is None else st_add_cpu <= 50)))
h = rss.get("db_hwm")
goals.append((f"peak RSS at {conc} concurrent", "≤ 20 MiB", f(h / 1024 if h else None, "{:.1f} MiB"), verdict(None if not h else h / 1024 <= 20)))
ih = idle.get("hwm_kib_end") or idle.get("vmhwm_kib_at_sample")
n_idle = idle.get("streams")
goals.append((f"peak RSS with {n_idle} concurrent idle streams", "≤ 200 MiB (10,000 streams)",
              f(ih / 1024 if ih else None, "{:.1f} MiB") + f" ({idle.get('open_at_sample')} open at the sample, {idle.get('completed_ok')} completed, {idle.get('failed')} failed)",
              verdict(None if not ih else (ih / 1024 <= 200 and idle.get("open_at_sample") == n_idle))))
for key, kn in (("idle", "plain HTTP/1.1 upstream"), ("idle_tls", "TLS + HTTP/2 upstream")):
    d = R.get(key, {})
    per = d.get("kib_per_stream")
    goals.append((f"idle streams, {kn}: RSS per stream ({d.get('streams')} held; RSS at the sample − RSS before the first)", "≤ 20 KiB",
                  f(per, "{:.1f} KiB") + f" ({d.get('open_at_sample')} open at the sample, peak {f((d.get('hwm_kib_end') or 0) / 1024, '{:.1f}')} MiB)",
                  verdict(None if per is None else (per <= 20 and d.get("open_at_sample") == d.get("streams")))))


def per_k(d):
    c, n = d.get("upstream_connections_at_sample"), d.get("streams")
    return None if c is None or not n else c * 1000 / n


cap = R.get("idle_h2cap", {})
goals.append(("upstream connections per 1,000 concurrent streams", "reported",
              f"plain HTTP/1.1 {f(per_k(R.get('idle', {})), '{:.0f}')}; TLS + HTTP/2 {f(per_k(R.get('idle_tls', {})), '{:.1f}')}; "
              f"HTTP/2 with SETTINGS_MAX_CONCURRENT_STREAMS={cap.get('h2_max_streams')}: {cap.get('upstream_connections_at_sample')} connection(s), "
              f"the last of {cap.get('streams')} streams started after {f(cap.get('all_open_after_s'), '{:.1f}')} s (each held {f((cap.get('hold_ms') or 0) / 1e3, '{:.1f}')} s)",
              "—"))
s50 = g("startup", "spawn_to_healthz_us", "p50")
goals.append(("start-up: spawn → first 200 from /healthz (median of 10)", "≤ 50 ms", f(s50 / 1e3 if s50 else None, "{:.1f} ms") + " (max " + f((g("startup", "spawn_to_healthz_us", "max") or 0) / 1e3, "{:.1f} ms") + ")", verdict(None if s50 is None else s50 / 1e3 <= 50)))
goals.append(("release binary size", "≤ 15 MiB", f(binary / 2**20 if binary else None, "{:.2f} MiB"), verdict(None if not binary else binary / 2**20 <= 15)))

notes = []
if loadgen == "wrk":
    notes.append("The load generator is wrk, which cannot hold a fixed rate: the \"fixed rate\" rows are a closed loop at c=1 instead.")
if loadgen == "none":
    notes.append("No load generator could be installed: throughput, CPU and fixed-rate rows were skipped.")
if "nginx" not in targets and not meta.get("only"):
    notes.append("nginx could not be installed or started: its column is skipped and the CPU ratio is n/a.")
if n_idle is not None and n_idle < 10000:
    per = ((ih or 0) - (idle.get("base_kib") or 0)) / n_idle if n_idle else 0
    notes.append(f"Idle streams were capped at {n_idle}: dashbridge needs 2 descriptors per stream and this machine's hard RLIMIT_NOFILE is {meta.get('nofile')} (it cannot be raised here). "
                 f"Growth was {per:.1f} KiB per stream over the {f((idle.get('base_kib') or 0)/1024, '{:.1f}')} MiB baseline, i.e. ≈ {f(((idle.get('base_kib') or 0) + per * 10000) / 1024, '{:.0f}')} MiB extrapolated to 10,000.")
if meta.get("only"):
    notes.append(f"BENCH_ONLY={meta['only']}: only those sections ran; every other row is n/a.")
if cap.get("all_open_after_s") is not None and cap.get("hold_ms") and cap["all_open_after_s"] > 1.5 * cap["hold_ms"] / 1e3:
    notes.append(f"HTTP/2 upstream with a stream limit: hyper's client multiplexes every stream on one connection and does not open another when the "
                 f"server's SETTINGS_MAX_CONCURRENT_STREAMS ({cap.get('h2_max_streams')}) is reached: the streams beyond it queue until earlier ones end "
                 f"({cap.get('streams')} streams held {cap['hold_ms'] / 1e3:.1f} s each needed {cap['all_open_after_s']:.1f} s to all start, "
                 f"on {cap.get('upstream_connections_at_sample')} connection(s)).")
for t in ("nginx", "dashbridge"):
    for k, kn in (("ns", "non-stream"), ("s", "stream")):
        busy = med(f"max/{t}/{k}", "core_busy")
        if t in targets and busy is not None and busy < 0.85:
            notes.append(f"{t} {kn} at c={conc}: its core was {busy * 100:.0f} % busy, so it was not the bottleneck: core 0 (load generator + fake) was, "
                         "or other processes took part of core 1 (see the load average). Its throughput is then not its capacity; its CPU per request still holds "
                         "(at a lighter load it batches less, which if anything inflates it).")
if "nginx" in targets and (g("ttfb/nginx", "chunks_per_response", "max") or 99) < 20:
    notes.append("nginx forwards whatever one read from the upstream returns as one chunk: the fake writes the 20 frames back to back, so nginx sends them in "
                 + (f"{g('ttfb/nginx', 'chunks_per_response', 'min')}" if g('ttfb/nginx', 'chunks_per_response', 'min') == g('ttfb/nginx', 'chunks_per_response', 'max') else f"{g('ttfb/nginx', 'chunks_per_response', 'min')}–{g('ttfb/nginx', 'chunks_per_response', 'max')}")
                 + f" chunks and pays for 2 writes where dashbridge pays for 21 (one per frame, by design). "
                 "The paced-streams row, where frames arrive 200 ms apart and nothing can be coalesced, compares the per-frame cost like for like.")
dr = {k: med(f"max/direct/{k}", "rps") for k in ("ns", "s")}
dbr = {k: med(f"max/dashbridge/{k}", "rps") for k in ("ns", "s")}
notes.append("Is the fake the bottleneck? Direct to the fake (fake + load generator sharing core 0) sustains "
             + ", ".join(f"{f(dr[k], '{:,.0f}')} req/s {kn}" for k, kn in (("ns", "non-stream"), ("s", "stream")))
             + "; through dashbridge "
             + ", ".join(f"{f(dbr[k], '{:,.0f}')} req/s" for k in ("ns", "s"))
             + ". When the proxied rate is below the direct rate and the proxy's core is ~100 % busy, the proxy is the limit; CPU per request is the proxy's own accounting either way.")

L = []
L.append("# dashbridge benchmark results\n")
L.append(f"Generated by `bench/run.sh` on {date} (commit {commit}).\n")
L.append(f"- Machine: {nproc} CPUs, {cpu}, {kernel}")
L.append(f"- Tools: {loadgen_v}; {nginx_v}; {rustc_v}")
L.append(f"- Load average (1/5/15 min) at start: {load_start}; at end: {load_end}; the run took {elapsed} s. Anything above ~0 means other work shared the two cores: latency tails suffer most, CPU per request least.")
L.append(f"- Pinning: the proxy under test (nginx worker or dashbridge) on core 1 (`taskset -c 1`); the fake upstream, the load generator and the stream client on core 0 (`taskset -c 0`). In the direct column the fake itself is the process measured (on core 0, sharing it with the load generator).")
L.append(f"- Max throughput: c={conc}, {dur} s per run, {repeats} runs interleaved; fixed rate: {rate} req/s for {lat_dur} s (32 connections, latency corrected for coordinated omission); TTFB: {ttfb_n} sequential requests after a warm-up.")
L.append("- CPU per request = (utime+stime of the proxy process, from /proc/PID/stat) ÷ HTTP 200 responses counted by the load generator in that run. Peak RSS = VmHWM from /proc/PID/status.\n")
L.append("## Targets\n")
L.append("| target | goal | measured | verdict |")
L.append("| --- | --- | --- | --- |")
for a, b, c, d in goals:
    L.append(f"| {a} | {b} | {c} | {d} |")
L.append("\n## Head to head\n")
L.append("| measure | " + " | ".join(names[c] for c in cols) + " | comparison |")
L.append("| --- | --- | --- | --- | --- |")
L.extend(rows)
L.append("\n## Notes\n")
for n in notes:
    L.append(f"- {n}")
L.append("\n## Commands\n")
L.append("```sh")
L.append("bash bench/run.sh            # everything below, in one run")
L.append("cargo build --release --bin dashbridge && cargo build --release --example fake_dashscope --example bench_client")
L.append("taskset -c 0 target/release/examples/fake_dashscope --listen 127.0.0.1:0")
L.append("DASHBRIDGE_LISTEN=127.0.0.1:0 DASHBRIDGE_UPSTREAM=$FAKE DASHSCOPE_API_KEY=sk-bench DASHBRIDGE_UPSTREAM_RETRIES=0 DASHBRIDGE_ACCESS_LOG=false taskset -c 1 target/release/dashbridge  # access log off, like nginx's access_log off")
L.append("taskset -c 1 nginx -p $WORK/nginx -c $WORK/nginx/nginx.conf   # worker_processes 1; proxy_pass to the fake, keepalive 256, proxy_buffering off")
if loadgen == "oha":
    L.append(f"taskset -c 0 oha --no-tui --output-format json -w -z {dur}s -c {conc} -m POST -H 'Content-Type: application/json' [-H 'Authorization: Bearer sk-bench' -H 'X-DashScope-SSE: enable'] -D BODY URL")
    L.append(f"taskset -c 0 oha --no-tui --output-format json -w -z {lat_dur}s -c 32 -q {rate} --latency-correction -m POST ... -D BODY URL")
elif loadgen == "wrk":
    L.append(f"taskset -c 0 wrk -t1 -c {conc} -d {dur}s -s post.lua URL")
L.append(f"taskset -c 0 target/release/examples/bench_client stream --url URL --body BODY [--header ...] -n {ttfb_n} -c 1")
L.append(f"taskset -c 0 target/release/examples/bench_client slow-upstream --n N --delay-ms {hold_ms}")
L.append(f"taskset -c 0 target/release/examples/bench_client slow-upstream --n N --delay-ms {hold_ms} --tls --cert-out CA.pem --h2-max-streams N  # then DASHBRIDGE_UPSTREAM_CA_FILE=CA.pem")
L.append("taskset -c 0 target/release/examples/bench_client idle --url $DASHBRIDGE/v1/chat/completions --body BODY -n N --pid $DASHBRIDGE_PID --upstream-port $UPSTREAM_PORT")
L.append("taskset -c 1 target/release/examples/bench_client startup --exe target/release/dashbridge --runs 10")
L.append("```")
L.append("\nURLs: direct and nginx get the native body on `/api/v1/services/aigc/text-generation/generation` (what dashbridge itself sends upstream); dashbridge gets the OpenAI body on `/v1/chat/completions`. Scenarios: `scenario:text` (non-stream), `scenario:stream20` (20 frames), `scenario:slow` (frames 200 ms apart). Embeddings: 10 texts to `text-embedding-v4`; direct and nginx get the native body on `/api/v1/services/embeddings/text-embedding/text-embedding` and return the fake's float arrays as they are; dashbridge gets `/v1/embeddings` with `encoding_format: base64` (the SDKs' default) and re-encodes every float.")
open(out, "w").write("\n".join(L) + "\n")
PY
if [ "${BENCH_MICRO:-0}" = 1 ]; then
    log "micro-benchmarks: cargo bench --bench translate (pinned to core 1)"
    cargo bench --bench translate --no-run --quiet 2>"$WORK/micro-build.err" || true
    if taskset -c 1 cargo bench --bench translate --quiet >"$WORK/micro.txt" 2>"$WORK/micro.err"; then
        {
            echo
            echo "## Micro-benchmarks (\`cargo bench --bench translate\`, divan, pinned to core 1)"
            echo
            echo '```text'
            cat "$WORK/micro.txt"
            echo '```'
        } >>"$OUT"
    else
        log "cargo bench failed (see $WORK/micro.err)"
    fi
fi
log "done in $(($(date -u +%s) - STARTED_AT)) s; wrote $OUT (raw data: $WORK)"
cat "$OUT"
