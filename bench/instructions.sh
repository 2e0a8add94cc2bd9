#!/usr/bin/env bash
# The instruction-count guard (issue 13): counts the CPU instructions of the hot paths under
# valgrind's callgrind and compares them with bench/instructions-baseline.txt. See
# bench/README.md ("Instruction counts").
#
#   bash bench/instructions.sh               # measure and compare; exit 1 if any scenario is
#                                            # more than INSTR_TOLERANCE_PCT (5) % above baseline
#   bash bench/instructions.sh --update      # measure and rewrite the baseline (commit it with
#                                            # the change that moved the figures, and say why)
#   bash bench/instructions.sh --experiment  # also measure the experiments (never compared)
#
# Scenarios live in benches/instructions.rs. Each is run twice under callgrind, with 1 and
# 1 + INSTR_K (10) iterations after one warm-up; (difference) ÷ INSTR_K is the figure: the
# instructions of one iteration, start-up and fixture building cancelled out. Instruction
# counts do not depend on machine load, so one run suffices.
#
# Needs valgrind (installed with apt-get when missing and running as root), coreutils and awk.
# Builds the bench with `cargo bench --no-run` (release settings).
set -euo pipefail
cd "$(dirname "$0")/.."

BASELINE=bench/instructions-baseline.txt
TOL=${INSTR_TOLERANCE_PCT:-5}
K=${INSTR_K:-10}
MODE=compare
EXPERIMENT=0
for arg in "$@"; do
    case $arg in
        --update) MODE=update ;;
        --experiment) EXPERIMENT=1 ;;
        *) echo "usage: bash bench/instructions.sh [--update] [--experiment]" >&2; exit 2 ;;
    esac
done

if ! command -v valgrind >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing valgrind (apt-get)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
    else
        echo "valgrind is needed (e.g. apt-get install valgrind)" >&2
        exit 2
    fi
fi

# Build; the executable's path comes from cargo's JSON messages.
BIN=$(cargo bench --locked --no-run --bench instructions --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*instructions-[^"]*"' | tail -n 1 | cut -d'"' -f4)
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
    echo "building the bench failed:" >&2
    cargo bench --locked --no-run --bench instructions >&2
    exit 2
fi

WORK=$(mktemp -d /tmp/dashbridge-instructions.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# Total instructions (Ir) of one run: count SCENARIO ITERATIONS
count() {
    local out="$WORK/cg.$1.$2"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" "$1" "$2" \
        >"$out.stdout" 2>"$out.log" || { cat "$out.log" >&2; return 1; }
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

per_iteration() {
    local one many
    one=$(count "$1" 1)
    many=$(count "$1" $((1 + K)))
    echo $(((many - one) / K))
}

TOOLCHAIN=$(rustc --version)
VALGRIND=$(valgrind --version)
mapfile -t GUARDED < <("$BIN" | awk -F'\t' '$2 == "guarded" { print $1 }')
mapfile -t EXPERIMENTS < <("$BIN" | awk -F'\t' '$2 == "experiment" { print $1 }')

declare -A NOW
for s in "${GUARDED[@]}"; do NOW[$s]=$(per_iteration "$s"); done

if [ "$MODE" = update ]; then
    {
        echo "# Instructions of one iteration of each hot-path scenario (benches/instructions.rs),"
        echo "# counted by callgrind. Written by \`bash bench/instructions.sh --update\`: commit it with"
        echo "# the change that moved the figures and give the reason in the commit message."
        echo "toolchain $TOOLCHAIN"
        echo "valgrind $VALGRIND"
        for s in "${GUARDED[@]}"; do echo "$s ${NOW[$s]}"; done
    } >"$BASELINE"
    echo "wrote $BASELINE:"
    grep -v '^#' "$BASELINE"
else
    [ -f "$BASELINE" ] || { echo "no $BASELINE: run bash bench/instructions.sh --update" >&2; exit 1; }
    base_tc=$(sed -n 's/^toolchain //p' "$BASELINE")
    base_vg=$(sed -n 's/^valgrind //p' "$BASELINE")
    [ "$base_tc" = "$TOOLCHAIN" ] || echo "note: baseline toolchain '$base_tc', this one '$TOOLCHAIN'"
    [ "$base_vg" = "$VALGRIND" ] || echo "note: baseline valgrind '$base_vg', this one '$VALGRIND'"
    fail=0
    printf '%-14s %14s %14s %9s  %s\n' scenario baseline now change verdict
    for s in "${GUARDED[@]}"; do
        base=$(awk -v s="$s" '$1 == s { print $2 }' "$BASELINE")
        if [ -z "$base" ]; then
            printf '%-14s %14s %14s %9s  %s\n' "$s" - "${NOW[$s]}" - "FAIL (not in the baseline)"
            fail=1
            continue
        fi
        read -r pct verdict < <(awk -v b="$base" -v n="${NOW[$s]}" -v t="$TOL" 'BEGIN {
            p = (n - b) * 100 / b
            printf "%+.2f%% %s\n", p, (p > t ? "FAIL" : (p < -t ? "ok (cheaper: consider --update)" : "ok"))
        }')
        printf '%-14s %14s %14s %9s  %s\n' "$s" "$base" "${NOW[$s]}" "$pct" "$verdict"
        case $verdict in FAIL*) fail=1 ;; esac
    done
fi

if [ "$EXPERIMENT" = 1 ]; then
    for s in "${EXPERIMENTS[@]}"; do
        printf '%-14s %14s %14s %9s  %s\n' "$s" - "$(per_iteration "$s")" - "experiment"
    done
fi

if [ "$MODE" = compare ] && [ "$fail" = 1 ]; then
    echo "FAIL: a hot path costs more than ${TOL}% above $BASELINE. If that is intended, run" \
        "\`bash bench/instructions.sh --update\` and commit the new baseline with the reason." >&2
    exit 1
fi
