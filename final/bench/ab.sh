#!/usr/bin/env bash
# A/B of the `final` variant between this tree and another commit, on the
# same machine, minutes apart, alternating: what "everything off costs
# nothing" is measured with (issue: metadata, interceptors, TLS, tracing and
# metrics must cost nothing while unused).
#
#   final/bench/ab.sh REV [ROUNDS] [VARIANT]
#
# Builds `bench` at REV in a throw-away worktree (target/ab/src, build cache
# target/ab/target), then runs `bench --variants VARIANT --concurrency
# 16,128 --rounds 1 --no-write` ROUNDS times (default 5) from each tree in
# turn, and prints each run's calls/s and CPU µs per call and the medians,
# with the ratio this tree / REV. CPU per call (user + sys of both
# processes over the window) is the steadier figure on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:?usage: final/bench/ab.sh REV [ROUNDS] [VARIANT]}
rounds=${2:-5}
variant=${3:-final}
ab=target/ab
rm -rf "$ab/src"
git worktree prune
git worktree add --detach "$ab/src" "$rev" >/dev/null
trap 'git worktree remove --force "$ab/src" >/dev/null 2>&1 || true' EXIT
echo "building bench at $rev and at the work tree (release)" >&2
(cd "$ab/src" && CARGO_TARGET_DIR="$PWD/../target" cargo build -q --release -p mprpc-bench)
cargo build -q --release -p mprpc-bench
before="$ab/target/release/bench"
after="target/release/bench"
out=$(mktemp)
for i in $(seq 1 "$rounds"); do
    for side in before after; do
        exe=${!side}
        "$exe" --no-write --variants "$variant" --concurrency 16,128 --rounds 1 2>/dev/null |
            awk -v side="$side" -v v="$variant" -F'|' '
                $2 ~ "^ *"v" *$" {
                    gsub(/[ ,]/, "", $3); split($4, c, " "); split($8, u, " ")
                    gsub(/,/, "", c[1]); print side, $3, c[1], u[1]
                }' | tee -a "$out"
    done
done
python3 - "$out" "$rev" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print(f"\nmedians over the runs (after = this tree, before = {sys.argv[2]}):")
print("| in flight | calls/s before | calls/s after | after/before | CPU µs/call before | CPU µs/call after | after/before |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for conc in sorted({r[1] for r in rows}, key=int):
    get = lambda side, i: statistics.median(float(r[i]) for r in rows if r[0] == side and r[1] == conc)
    cb, ca, ub, ua = get("before", 2), get("after", 2), get("before", 3), get("after", 3)
    print(f"| {conc} | {cb:,.0f} | {ca:,.0f} | {ca/cb:.3f} | {ub:.2f} | {ua:.2f} | {ua/ub:.3f} |")
PY
rm -f "$out"
