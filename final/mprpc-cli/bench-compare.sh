#!/usr/bin/env bash
# `mprpc bench` against final/bench's load generator, same call, same
# server: what the book's CLI chapter reports (issue 27: the tool's figures
# within 20 % of final/bench's).
#
#   final/mprpc-cli/bench-compare.sh [ROUNDS] [WINDOW_S]
#
# Builds both in release, starts one `bench server --variant final`
# (final/'s RpcProvider serving UserServiceRpc.Login) per round, and runs
# against it, one after the other, `bench load --variant final` (generated
# stub, one MprpcChannel) and `mprpc bench` (dynamic messages from
# proto/user.proto, one MprpcChannel), both closed loops with
# CONC (default 16) calls in flight, a 1 s warm-up and a WINDOW_S (default
# 5) window; each round swaps which goes first, so a drift of a shared
# machine falls on both. The request is Login("zhang san", "123456").
#
# With two or more CPUs the server is pinned to CPU 0 and the load to CPU 1
# (PIN=0 turns that off), as final/bench/ab.sh does.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
window=${2:-5}
conc=${CONC:-16}
pin=${PIN:-1}
if [ "$(nproc)" -lt 2 ]; then pin=0; fi
server_cpu="" load_cpu=""
if [ "$pin" = 1 ]; then server_cpu="taskset -c 0" load_cpu="taskset -c 1"; fi
echo "building bench and mprpc (release)" >&2
cargo build -q --release -p mprpc-bench --bin bench -p mprpc-cli --bin mprpc
bench=target/release/bench
mprpc=${MPRPC:-target/release/mprpc}  # MPRPC=path measures another build of the tool
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
login='{"name": "emhhbmcgc2Fu", "pwd": "MTIzNDU2"}'

# Appends "bench|mprpc calls/s p50_us p99_us" for one run against $1.
load_bench() {
    $load_cpu "$bench" load --variant final --addr "$1" --concurrency "$conc" \
        --warmup-ms 1000 --window-ms "$((window * 1000))" 2>/dev/null |
        python3 -c '
import json, sys
r = json.load(sys.stdin)
print("bench", round(r["calls_per_sec"]), round(r["p50_us"]), round(r["p99_us"]))
' | tee -a "$work/rows"
}
load_mprpc() {
    $load_cpu "$mprpc" bench "$1" fixbug.UserServiceRpc/Login "$login" \
        --proto proto/user.proto -c "$conc" -d "${window}s" |
        python3 -c '
import re, sys
text = sys.stdin.read()
rate = re.search(r"([0-9]+) calls/s", text).group(1)
p50, p99 = re.search(r"p50 ([0-9]+) µs, p99 ([0-9]+) µs", text).groups()
print("mprpc", rate, p50, p99)
' | tee -a "$work/rows"
}

for i in $(seq 1 "$rounds"); do
    rm -f "$work/addr" "$work/stop"
    mkfifo "$work/stop"
    # The server runs until its stdin, the fifo, closes.
    $server_cpu "$bench" server --variant final < "$work/stop" > "$work/addr" 2>/dev/null &
    spid=$!
    exec 3> "$work/stop"
    addr=""
    for _ in $(seq 1 100); do
        addr=$(sed -n 's/^LISTENING //p' "$work/addr" 2>/dev/null)
        [ -n "$addr" ] && break
        sleep 0.05
    done
    if [ -z "$addr" ]; then
        echo "the server did not start" >&2
        exit 1
    fi
    if [ $((i % 2)) = 1 ]; then load_bench "$addr"; load_mprpc "$addr"
    else load_mprpc "$addr"; load_bench "$addr"; fi
    exec 3>&-
    wait "$spid" 2>/dev/null || true
done
python3 - "$work/rows" "$conc" "$pin" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
col = lambda who, i: [float(r[i]) for r in rows if r[0] == who]
pinned = "server on CPU 0, load on CPU 1" if sys.argv[3] == "1" else "not pinned"
print(f"\nmedians over {len(col('bench', 1))} rounds, {sys.argv[2]} in flight ({pinned}):")
print("| load | calls/s | p50 µs | p99 µs |")
print("|---|---:|---:|---:|")
for who, name in [("bench", "final/bench `bench load --variant final`"), ("mprpc", "`mprpc bench`")]:
    print(f"| {name} | {statistics.median(col(who, 1)):,.0f} | {statistics.median(col(who, 2)):.0f} | {statistics.median(col(who, 3)):.0f} |")
ratios = [m / b for m, b in zip(col("mprpc", 1), col("bench", 1))]
print(f"\nmprpc / bench calls/s, per round: {', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")
PY
