#!/usr/bin/env bash
# A small mprpc cluster on one machine, each host in its own network
# namespace: three ZooKeeper hosts forming an ensemble, three provider hosts,
# one caller host, all on one virtual switch. The caller runs load while the
# script breaks things, then it prints what the calls saw.
#
#   sudo final/scripts/cluster.sh            # full run, about a minute
#   sudo final/scripts/cluster.sh --smoke    # short run (tests/cluster_script.rs)
#
# The faults, in order:
#   1. kill -9 of the provider process on host p3 (the kernel resets its
#      connections: a process crash);
#   2. host p2 drops off the network (its link goes down; nothing is reset:
#      a power loss or a pulled cable, seen from outside);
#   3. the ZooKeeper leader's host drops off the network and its JVM dies.
#
# Addresses (10.77.0.0/24) exist only inside namespaces this script creates;
# the switch is a bridge inside a namespace of its own, so the machine's own
# network namespace gets no interface, address or route. Everything the
# script made (namespaces, processes, files) is removed on exit, also after
# an error or Ctrl-C.
#
# Needs root, iproute2 with `ip netns`, and the Debian package `zookeeper`.
# Without root or `ip netns` it says why and exits 0. Binaries: the `callee`
# and `cluster_load` examples, built here (release) unless MPRPC_CALLEE and
# MPRPC_CLUSTER_LOAD name them already.

set -euo pipefail

# ANCHOR: settings
MODE=full
case "${1:-}" in
  --smoke) MODE=smoke ;;
  ""|--full) ;;
  *) echo "usage: $0 [--smoke|--full]" >&2; exit 2 ;;
esac

if [ "$MODE" = smoke ]; then
  LOAD_SECONDS=16 FAULT1_AT=3 FAULT2_AT=6 FAULT3_AT=11
else
  LOAD_SECONDS=30 FAULT1_AT=5 FAULT2_AT=12 FAULT3_AT=20
fi
WORKERS=32               # calls the caller keeps in flight
DEADLINE_MS=1000         # deadline of every call
SESSION_MS=4000          # ZooKeeper session timeout of providers and caller
SUBNET=10.77.0           # exists only inside our namespaces
ZK_HOSTS=(zk1 zk2 zk3)   # 10.77.0.11-13
PROVIDER_HOSTS=(p1 p2 p3) # 10.77.0.21-23, port 8000
CALLER_HOST=caller       # 10.77.0.30
# ANCHOR_END: settings

skip() { echo "cluster.sh: skipped: $*"; exit 0; }
die() { echo "cluster.sh: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces (try sudo)"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
ip netns list >/dev/null 2>&1 || skip "'ip netns' is not available here"
command -v java >/dev/null || die "no java: apt-get install -y zookeeper"
[ -f /usr/share/java/zookeeper.jar ] || die "no ZooKeeper: apt-get install -y zookeeper"

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# Names carry our pid, so two runs never touch each other's namespaces.
P="mprpc$$"
WORK=$(mktemp -d "/tmp/mprpc-cluster.XXXXXX")
T0=$(date +%s%N)

say() { printf '[%6.2fs] %s\n' "$(( ($(date +%s%N) - T0) / 1000000 ))e-3" "$*"; }
ns() { echo "$P-$1"; }
in_ns() { local host=$1; shift; ip netns exec "$(ns "$host")" "$@"; }

# ANCHOR: cleanup
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # Only processes inside our own namespaces: those we started.
  for host in "$CALLER_HOST" "${PROVIDER_HOSTS[@]}" "${ZK_HOSTS[@]}"; do
    for pid in $(ip netns pids "$(ns "$host")" 2>/dev/null); do
      kill -9 "$pid" 2>/dev/null || true
    done
  done
  sleep 0.2
  for host in "$CALLER_HOST" "${PROVIDER_HOSTS[@]}" "${ZK_HOSTS[@]}" sw; do
    ip netns del "$(ns "$host")" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    echo "cluster.sh: failed (exit $status); last lines of the logs:" >&2
    tail -n 5 "$WORK"/*.log "$WORK"/*/output.txt 2>/dev/null >&2 || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# ANCHOR_END: cleanup

# --- binaries --------------------------------------------------------------
CALLEE=${MPRPC_CALLEE:-}
LOAD=${MPRPC_CLUSTER_LOAD:-}
if [ -z "$CALLEE" ] || [ -z "$LOAD" ]; then
  say "building the callee and cluster_load examples (release)"
  (cd "$REPO" && cargo build --quiet --release -p mprpc-examples --example callee --example cluster_load)
  TARGET=${CARGO_TARGET_DIR:-$REPO/target}
  CALLEE=$TARGET/release/examples/callee
  LOAD=$TARGET/release/examples/cluster_load
fi
[ -x "$CALLEE" ] && [ -x "$LOAD" ] || die "binaries not found: $CALLEE $LOAD"
T0=$(date +%s%N) # the clock of the report starts with the cluster

# --- network ---------------------------------------------------------------
# ANCHOR: network
ip_of() {
  case $1 in
    zk1) echo "$SUBNET.11" ;; zk2) echo "$SUBNET.12" ;; zk3) echo "$SUBNET.13" ;;
    p1) echo "$SUBNET.21" ;; p2) echo "$SUBNET.22" ;; p3) echo "$SUBNET.23" ;;
    caller) echo "$SUBNET.30" ;;
  esac
}

# The switch: a bridge in a namespace of its own.
ip netns add "$(ns sw)"
ip -n "$(ns sw)" link add br0 type bridge
ip -n "$(ns sw)" link set br0 up
# One host: a namespace, a veth pair whose one end is the host's eth0 and
# whose other end is plugged into the switch.
add_host() {
  local host=$1
  ip netns add "$(ns "$host")"
  ip -n "$(ns sw)" link add "$host" type veth peer name eth0 netns "$(ns "$host")"
  ip -n "$(ns sw)" link set "$host" master br0 up
  ip -n "$(ns "$host")" addr add "$(ip_of "$host")/24" dev eth0
  ip -n "$(ns "$host")" link set eth0 up
  ip -n "$(ns "$host")" link set lo up
}
for host in "${ZK_HOSTS[@]}" "${PROVIDER_HOSTS[@]}" "$CALLER_HOST"; do
  add_host "$host"
done
# ANCHOR_END: network
say "network: switch $(ns sw), hosts ${ZK_HOSTS[*]} ${PROVIDER_HOSTS[*]} $CALLER_HOST on $SUBNET.0/24"

# --- ZooKeeper ensemble ----------------------------------------------------
# ANCHOR: zookeeper
ZK_CONNECT=$(for h in "${ZK_HOSTS[@]}"; do printf '%s:2181,' "$(ip_of "$h")"; done)
ZK_CONNECT=${ZK_CONNECT%,}
for i in 1 2 3; do
  host=zk$i
  mkdir -p "$WORK/$host/data"
  echo "$i" > "$WORK/$host/data/myid"
  cat > "$WORK/$host/zoo.cfg" <<EOF
dataDir=$WORK/$host/data
clientPort=2181
clientPortAddress=$(ip_of "$host")
tickTime=500
initLimit=20
syncLimit=5
minSessionTimeout=1000
maxSessionTimeout=60000
admin.enableServer=false
4lw.commands.whitelist=srvr,dump,ruok
server.1=$(ip_of zk1):2888:3888
server.2=$(ip_of zk2):2888:3888
server.3=$(ip_of zk3):2888:3888
EOF
  in_ns "$host" java -Xms16m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$WORK/$host/zoo.cfg" \
    > "$WORK/$host.log" 2>&1 &
done
# ANCHOR_END: zookeeper

# Asks ZooKeeper host $1 a four-letter word, from the caller host.
four() {
  in_ns "$CALLER_HOST" timeout 2 bash -c \
    "exec 3<>/dev/tcp/$(ip_of "$1")/2181 && printf '$2' >&3 && cat <&3" 2>/dev/null || true
}
mode_of() { four "$1" srvr | sed -n 's/^Mode: //p'; }
leader() { for h in "$@"; do [ "$(mode_of "$h")" = leader ] && { echo "$h"; return; }; done; }
wait_quorum() { # wait_quorum SECONDS HOST... -> prints the leader
  local deadline=$(( $(date +%s) + $1 )); shift
  while [ "$(date +%s)" -lt "$deadline" ]; do
    local serving=0 lead=""
    for h in "$@"; do
      case "$(mode_of "$h")" in
        leader) serving=$((serving + 1)); lead=$h ;;
        follower) serving=$((serving + 1)) ;;
      esac
    done
    if [ "$serving" -eq $# ] && [ -n "$lead" ]; then echo "$lead"; return 0; fi
    sleep 0.1
  done
  return 1
}
ZK_LEADER=$(wait_quorum 60 "${ZK_HOSTS[@]}") || die "no ZooKeeper quorum within 60 s"
say "ZooKeeper ensemble serving at $ZK_CONNECT; leader: $ZK_LEADER"

# --- providers -------------------------------------------------------------
# ANCHOR: provider_config
write_config() { # write_config FILE IP
  cat > "$1" <<EOF
rpcserverip = "$2"
rpcserverport = 8000
zookeeperip = "$ZK_CONNECT"
zk_session_timeout_ms = $SESSION_MS
zk_root = "/mprpc"
load_balance = "p2c"
log_dir = "$(dirname "$1")/logs"
log_level = "info"
[timeouts]
call_ms = $DEADLINE_MS
zk_connect_ms = 30000
EOF
}
# ANCHOR_END: provider_config
for host in "${PROVIDER_HOSTS[@]}"; do
  mkdir -p "$WORK/$host"
  write_config "$WORK/$host/mprpc.toml" "$(ip_of "$host")"
  (cd "$WORK/$host" && in_ns "$host" "$CALLEE" -i "$WORK/$host/mprpc.toml" > output.txt 2>&1) &
done
deadline=$(( $(date +%s) + 30 ))
for host in "${PROVIDER_HOSTS[@]}"; do
  until grep -qs "provider serving" "$WORK/$host"/logs/*; do
    [ "$(date +%s)" -lt "$deadline" ] || die "provider on $host did not register within 30 s"
    sleep 0.1
  done
done
say "providers registered: $(for h in "${PROVIDER_HOSTS[@]}"; do printf '%s:8000 ' "$(ip_of "$h")"; done)"

# --- load and faults -------------------------------------------------------
mkdir -p "$WORK/$CALLER_HOST"
write_config "$WORK/$CALLER_HOST/mprpc.toml" "$(ip_of "$CALLER_HOST")"
say "caller: $WORKERS calls in flight for $LOAD_SECONDS s, deadline $DEADLINE_MS ms, session timeout $SESSION_MS ms"
(cd "$WORK/$CALLER_HOST" && in_ns "$CALLER_HOST" "$LOAD" -i "$WORK/$CALLER_HOST/mprpc.toml" \
  --seconds "$LOAD_SECONDS" --workers "$WORKERS" 2>&1 | tee "$WORK/load.out" | sed -u 's/^/          caller | /') &
LOAD_JOB=$!
LOAD_STARTED=$(date +%s%N)
# The load program is the only process in the caller's namespace.
load_pid() { ip netns pids "$(ns "$CALLER_HOST")" | head -n 1; }
mark() { kill -USR1 "$(load_pid)" 2>/dev/null || true; }
at() { # sleep until $1 seconds after the load started
  local ms=$(( $1 * 1000 - ($(date +%s%N) - LOAD_STARTED) / 1000000 ))
  [ "$ms" -gt 0 ] && sleep "$(( ms / 1000 )).$(printf '%03d' $(( ms % 1000 )))"
  return 0
}

# ANCHOR: faults
at "$FAULT1_AT"
say "FAULT 1: kill -9 the provider process on host p3"
mark
for pid in $(ip netns pids "$(ns p3)"); do kill -9 "$pid"; done

at "$FAULT2_AT"
say "FAULT 2: host p2 drops off the network (link down, nothing reset)"
mark
ip -n "$(ns p2)" link set eth0 down

at "$FAULT3_AT"
ZK_LEADER=$(leader "${ZK_HOSTS[@]}")
say "FAULT 3: ZooKeeper leader host $ZK_LEADER drops off the network and its JVM dies"
mark
ip -n "$(ns "$ZK_LEADER")" link set eth0 down
for pid in $(ip netns pids "$(ns "$ZK_LEADER")"); do kill -9 "$pid"; done
SURVIVORS=()
for h in "${ZK_HOSTS[@]}"; do [ "$h" = "$ZK_LEADER" ] || SURVIVORS+=("$h"); done
FAILED_AT=$(date +%s%N)
if NEW_LEADER=$(wait_quorum 30 "${SURVIVORS[@]}"); then
  say "ZooKeeper: new leader $NEW_LEADER after $(( ($(date +%s%N) - FAILED_AT) / 1000000 )) ms"
else
  say "ZooKeeper: no new leader within 30 s"
fi
# ANCHOR_END: faults

wait "$LOAD_JOB" # the load program (providers and ZooKeeper run on)
NEW_LEADER=${NEW_LEADER:-$(leader "${SURVIVORS[@]}")}
# The leader's `dump` lists every live session and its ephemeral znodes.
say "ephemeral znodes now (leader $NEW_LEADER, 'dump'):"
four "$NEW_LEADER" dump | grep -E '^(0x|	/)' | sed 's/^/          zookeeper | /'
if grep -qs "session .* ended" "$WORK/p1"/logs/*; then
  say "provider p1 LOST its ZooKeeper session during the leader failure"
else
  say "provider p1 kept its ZooKeeper session through the leader failure"
fi

# --- verdict ---------------------------------------------------------------
# Healthy at the end: the last two seconds of load had calls and no failure.
TAIL_FAILED=$(grep -E '^ +[0-9]+ +[0-9]+ +[0-9]+' "$WORK/load.out" | tail -n 2 | awk '{ s += $3 } END { print s + 0 }')
TAIL_OK=$(grep -E '^ +[0-9]+ +[0-9]+ +[0-9]+' "$WORK/load.out" | tail -n 2 | awk '{ s += $2 } END { print s + 0 }')
echo
echo "summary:"
grep -E '^(total|fault)' "$WORK/load.out" | sed 's/^/  /'
echo "  faults: 1 = kill -9 of provider p3, 2 = provider host p2 off the network, 3 = ZooKeeper leader host off the network"
if [ "$TAIL_OK" -gt 0 ] && [ "$TAIL_FAILED" -eq 0 ]; then
  echo "cluster.sh: healthy at the end ($TAIL_OK calls ok, 0 failed in the last 2 s)"
else
  echo "cluster.sh: NOT healthy at the end ($TAIL_OK ok, $TAIL_FAILED failed in the last 2 s)"
  exit 1
fi
