#!/usr/bin/env bash
# Builds the finished framework (final/: the runtime crate `mprpc`, the code
# generator `mprpc-build`, and the demo crate `mprpc-examples` built on them
# as a user's crate is) in release and runs its demo: two providers
# (fixbug.UserServiceRpc on 127.0.0.1:8000, fixbug.FriendServiceRpc on
# 127.0.0.1:8001, found through the static registry in
# final/examples/mprpc.toml, so no ZooKeeper is needed) and a caller. The course's autobuild.sh ran
# cmake and make; cargo does both.
set -euo pipefail
cd "$(dirname "$0")"

echo "==> cargo build --release -p mprpc-examples --examples"
cargo build --release -p mprpc-examples --examples
bin="${CARGO_TARGET_DIR:-target}/release/examples"

for port in 8000 8001; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "autobuild: port $port is already in use; stop what listens there and run again" >&2
        exit 1
    fi
done

pids=()
stop_providers() {
    # SIGINT is the providers' graceful shutdown (deregister, drain, close).
    for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_providers EXIT

echo "==> providers: callee (127.0.0.1:8000) and friend_service (127.0.0.1:8001)"
"$bin/callee" -i final/examples/mprpc.toml & pids+=($!)
"$bin/friend_service" -i final/examples/friend.toml & pids+=($!)

for port in 8000 8001; do
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
done

echo "==> caller"
"$bin/caller" -i final/examples/mprpc.toml
echo "==> done; stopping the providers gracefully"
