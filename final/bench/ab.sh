#!/usr/bin/env bash
# A/B of one variant (default `final`) between this tree and another
# commit, on the same machine, minutes apart, alternating: what "everything
# off costs nothing" is measured with (issue: metadata, interceptors, TLS,
# tracing and metrics must cost nothing while unused).
#
#   final/bench/ab.sh REV [ROUNDS] [VARIANT]
#   final/bench/ab.sh . [ROUNDS] VARIANT
#
# The second form compares two variants of the work tree instead: `final`
# ("before") against VARIANT ("after"), e.g. `final-tls` or
# `final-metrics` — what TLS or metrics cost, measured the same way.
#
# Builds `bench` at REV in a throw-away worktree (target/ab/src, build cache
# target/ab/target) and in the work tree (release). Then, ROUNDS times
# (default 10), runs one server and one load run per tree and per number of
# calls in flight (AB_CONC, default "16 128"), with `bench server` and
# `bench load` directly: a 1 s warm-up and an AB_WINDOW_MS window (default
# 5000). Each round swaps which tree goes first, so that a drift of the
# machine falls on both.
#
# With two or more CPUs the server is pinned to CPU 0 and the load to CPU 1
# (AB_PIN=0 turns that off): on a shared machine, letting the scheduler mix
# the four runtime threads on two cores makes single runs spread by ±10 %,
# more than what is measured here. Pinned, the spread is a few per cent.
#
# Prints each run's calls/s and CPU µs per call (user + sys of both
# processes over the window, the steadier figure), then per number in
# flight the medians and the ratio this tree / REV, the median of the
# per-round ratios (the two runs of a round are seconds apart, so a drift
# of the machine between rounds cancels out), and the best (lowest) CPU
# per call of each side, which noise from other tenants can only raise.
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:?usage: final/bench/ab.sh REV [ROUNDS] [VARIANT]}
rounds=${2:-10}
variant=${3:-final}
before_variant=$variant
if [ "$rev" = . ]; then before_variant=final; fi
concs=${AB_CONC:-16 128}
window=${AB_WINDOW_MS:-5000}
pin=${AB_PIN:-1}
if [ "$(nproc)" -lt 2 ]; then pin=0; fi
ab=target/ab
work=$(mktemp -d)
after="target/release/bench"
if [ "$rev" = . ]; then
    trap 'rm -rf "$work"' EXIT
    echo "building bench at the work tree (release)" >&2
    cargo build -q --release -p mprpc-bench
    before=$after
else
    rm -rf "$ab/src"
    git worktree prune
    git worktree add --detach "$ab/src" "$rev" >/dev/null
    trap 'git worktree remove --force "$ab/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
    echo "building bench at $rev and at the work tree (release)" >&2
    (cd "$ab/src" && CARGO_TARGET_DIR="$PWD/../target" cargo build -q --release -p mprpc-bench)
    cargo build -q --release -p mprpc-bench
    before="$ab/target/release/bench"
fi
server_cpu="" load_cpu=""
if [ "$pin" = 1 ]; then server_cpu="taskset -c 0" load_cpu="taskset -c 1"; fi

# One server and one load run of tree $1 ("before" or "after") with $2
# calls in flight; appends "side conc calls/s cpu_us" to $work/rows.
run() {
    local side=$1 conc=$2 exe v
    exe=${!side}
    v=$variant
    if [ "$side" = before ]; then v=$before_variant; fi
    rm -f "$work/addr" "$work/stop"
    mkfifo "$work/stop"
    # The server runs until its stdin closes: the fifo, held open by sleep.
    $server_cpu "$exe" server --variant "$v" < "$work/stop" > "$work/addr" 2>/dev/null &
    local spid=$!
    exec 3> "$work/stop"
    local addr=""
    for _ in $(seq 1 100); do
        addr=$(sed -n 's/^LISTENING //p' "$work/addr" 2>/dev/null)
        [ -n "$addr" ] && break
        sleep 0.05
    done
    if [ -z "$addr" ]; then
        echo "the $side server did not start" >&2
        exec 3>&-
        kill "$spid" 2>/dev/null || true
        return 1
    fi
    $load_cpu "$exe" load --variant "$v" --addr "$addr" --concurrency "$conc" \
        --warmup-ms 1000 --window-ms "$window" --server-pid "$spid" 2>/dev/null |
        python3 -c '
import json, sys
r = json.load(sys.stdin)
print(sys.argv[1], sys.argv[2], round(r["calls_per_sec"]), round(r["cpu_us_per_call"], 3))
' "$side" "$conc" | tee -a "$work/rows"
    exec 3>&-
    wait "$spid" 2>/dev/null || true
}

for i in $(seq 1 "$rounds"); do
    if [ $((i % 2)) = 1 ]; then order="before after"; else order="after before"; fi
    for conc in $concs; do
        for side in $order; do
            run "$side" "$conc"
        done
    done
done
python3 - "$work/rows" "$rev" "$pin" "$before_variant" "$variant" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
pinned = "server on CPU 0, load on CPU 1" if sys.argv[3] == "1" else "not pinned"
if sys.argv[2] == ".":
    sides = f"after = {sys.argv[5]}, before = {sys.argv[4]}, both this tree"
else:
    sides = f"after = this tree, before = {sys.argv[2]}; variant {sys.argv[5]}"
print(f"\nmedians over the runs ({sides}; {pinned}):")
print("| in flight | runs | calls/s before | calls/s after | after/before | CPU µs/call before | CPU µs/call after | after/before | per round (median) | best CPU µs/call before / after |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for conc in sorted({r[1] for r in rows}, key=int):
    col = lambda side, i: [float(r[i]) for r in rows if r[0] == side and r[1] == conc]
    cb, ca = statistics.median(col("before", 2)), statistics.median(col("after", 2))
    ub, ua = statistics.median(col("before", 3)), statistics.median(col("after", 3))
    bb, ba = min(col("before", 3)), min(col("after", 3))
    n = min(len(col("before", 2)), len(col("after", 2)))
    # Each round has one run of each side per concurrency, in row order.
    paired = statistics.median(a / b for a, b in zip(col("after", 3), col("before", 3)))
    print(f"| {conc} | {n} | {cb:,.0f} | {ca:,.0f} | {ca/cb:.3f} | {ub:.2f} | {ua:.2f} | {ua/ub:.3f} | {paired:.3f} | {bb:.2f} / {ba:.2f} ({ba/bb:.3f}) |")
PY
