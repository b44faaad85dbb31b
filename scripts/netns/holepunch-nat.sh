#!/usr/bin/env bash
# Real NATs for @deccom/holepunch: two private networks, each behind its own Linux
# router namespace doing iptables MASQUERADE, and a public segment holding the
# introducer (which also relays). Runs real DecCom nodes (UDP, holepunch, Kademlia,
# TCP, tcpHolepunch) in the namespaces and prints one JSON line per scenario:
#
#   punch  MASQUERADE keeping ports (endpoint-independent mapping, port-restricted
#          filtering, like most home routers): UDP and TCP hole punching must succeed.
#   relay  MASQUERADE --random-fully on both routers (a fresh random port per flow: a
#          symmetric NAT on each side), so punching cannot work: the relay must.
#
#   public segment 198.18.0.0/24 (bridge in namespace <p>-pub, introducer 198.18.0.1)
#     router <p>-r1  WAN 198.18.0.11  LAN 10.1.0.1/24  ->  node A 10.1.0.2 (<p>-a)
#     router <p>-r2  WAN 198.18.0.12  LAN 10.2.0.1/24  ->  node B 10.2.0.2 (<p>-b)
#
# Each router drops unsolicited packets from the WAN (INPUT and FORWARD), as a home
# router does; only replies to flows opened from inside come in.
#
# Usage: scripts/netns/holepunch-nat.sh [punch|relay|all]   (root; needs built dist/)
# Exit status: 0 all scenarios passed, 1 a scenario failed, 77 skipped (not root,
# namespaces or iptables unavailable; the reason is printed on stderr).
# Everything created (namespaces, veths, processes) is removed on exit.
set -uo pipefail

SCENARIO="${1:-all}"
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PREFIX="hp$$"
NODE="${NODE:-node}"
TIMEOUT_S="${HOLEPUNCH_NETNS_TIMEOUT_S:-90}"
LOGDIR="$(mktemp -d /tmp/deccom-netns.XXXXXX)"
PIDS=()

skip() {
  echo "SKIP holepunch netns: $*" >&2
  exit 77
}

cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
  done
  sleep 0.2
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  done
  PIDS=()
  for ns in a b r1 r2 pub; do
    # Whatever still runs inside a namespace (a node whose PID we did not hold) goes too.
    ip netns pids "$PREFIX-$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$PREFIX-$ns" 2>/dev/null
  done
}
trap 'cleanup; rm -rf "$LOGDIR"' EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = "0" ] || skip "needs root (network namespaces and iptables)"
command -v ip >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && apt-get install -y -qq iproute2 >/dev/null 2>&1; }
command -v ip >/dev/null 2>&1 || skip "the 'ip' command (iproute2) is missing and could not be installed"
command -v iptables >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && (apt-get install -y -qq iptables >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq iptables >/dev/null 2>&1)); }
command -v iptables >/dev/null 2>&1 || skip "iptables is missing and could not be installed (apt-get install iptables)"
ip netns add "$PREFIX-probe" 2>/dev/null || skip "this machine refuses network namespaces (ip netns add failed)"
if ! ip netns exec "$PREFIX-probe" iptables -t nat -L >/dev/null 2>&1; then
  ip netns del "$PREFIX-probe"
  skip "iptables NAT does not work inside a network namespace here"
fi
ip netns del "$PREFIX-probe"
for pkg in core udp kademlia tcp holepunch; do
  [ -f "$REPO/packages/$pkg/dist/index.js" ] || skip "packages/$pkg/dist is missing: build first (pnpm build)"
done

ns() { ip netns exec "$PREFIX-$1" "${@:2}"; }

setup() {
  local mode="$1"
  for n in pub r1 r2 a b; do ip netns add "$PREFIX-$n" || return 1; done
  for n in pub r1 r2 a b; do ns "$n" ip link set lo up; done
  ns pub ip link add br0 type bridge
  ns pub ip addr add 198.18.0.1/24 dev br0
  ns pub ip link set br0 up
  local i=1
  for r in r1 r2; do
    # WAN: router <-> public bridge
    ip link add "$PREFIX-${r}w" type veth peer name "$PREFIX-${r}p"
    ip link set "$PREFIX-${r}w" netns "$PREFIX-$r"
    ip link set "$PREFIX-${r}p" netns "$PREFIX-pub"
    ns "$r" ip link set "$PREFIX-${r}w" name wan
    ns pub ip link set "$PREFIX-${r}p" master br0
    ns pub ip link set "$PREFIX-${r}p" up
    ns "$r" ip addr add "198.18.0.1$i/24" dev wan
    ns "$r" ip link set wan up
    ns "$r" ip route add default via 198.18.0.1
    # LAN: router <-> node
    local node; node=$([ "$r" = r1 ] && echo a || echo b)
    ip link add "$PREFIX-${r}l" type veth peer name "$PREFIX-${node}e"
    ip link set "$PREFIX-${r}l" netns "$PREFIX-$r"
    ip link set "$PREFIX-${node}e" netns "$PREFIX-$node"
    ns "$r" ip link set "$PREFIX-${r}l" name lan
    ns "$node" ip link set "$PREFIX-${node}e" name eth0
    ns "$r" ip addr add "10.$i.0.1/24" dev lan
    ns "$r" ip link set lan up
    ns "$node" ip addr add "10.$i.0.2/24" dev eth0
    ns "$node" ip link set eth0 up
    ns "$node" ip route add default via "10.$i.0.1"
    # The NAT router.
    ns "$r" sysctl -qw net.ipv4.ip_forward=1
    if [ "$mode" = relay ]; then
      ns "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully
    else
      ns "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
    fi
    ns "$r" iptables -A FORWARD -i lan -o wan -j ACCEPT
    ns "$r" iptables -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    ns "$r" iptables -A FORWARD -i wan -j DROP
    ns "$r" iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    ns "$r" iptables -A INPUT -i wan -j DROP
    i=$((i + 1))
  done
}

wait_for() { # file pattern seconds
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

run_scenario() {
  local mode="$1"
  local log="$LOGDIR/$mode"
  mkdir -p "$log"
  if ! setup "$mode" 2>"$log/setup.err"; then
    echo "{\"scenario\":\"$mode\",\"ok\":false,\"error\":\"setup failed: $(tr '\n"' ' ' <"$log/setup.err")\"}"
    cleanup
    return 1
  fi
  # Started with ip directly (not through the ns function, whose background subshell
  # would hold the PID): ip execs node, so $! is the node and cleanup can stop it.
  ip netns exec "$PREFIX-pub" "$NODE" "$HERE/node.mjs" --role introducer --host 198.18.0.1 --port 7000 >"$log/introducer.out" 2>"$log/introducer.err" &
  PIDS+=($!)
  wait_for "$log/introducer.out" '"ready"' 30 || { echo "{\"scenario\":\"$mode\",\"ok\":false,\"error\":\"introducer did not start\"}"; cleanup; return 1; }
  ip netns exec "$PREFIX-b" "$NODE" "$HERE/node.mjs" --role b --host 10.2.0.2 --bootstrap 198.18.0.1:7000 >"$log/b.out" 2>"$log/b.err" &
  PIDS+=($!)
  wait_for "$log/b.out" '"ready"' 30 || { echo "{\"scenario\":\"$mode\",\"ok\":false,\"error\":\"node B did not start\"}"; cleanup; return 1; }
  timeout "$TIMEOUT_S" ip netns exec "$PREFIX-a" "$NODE" "$HERE/node.mjs" --role a --host 10.1.0.2 --bootstrap 198.18.0.1:7000 --scenario "$mode" >"$log/a.out" 2>"$log/a.err"
  local status=$?
  local result
  result="$(grep '"event":"result"' "$log/a.out" | tail -1)"
  # Prove the NATs were real: the public segment has no route to the private networks.
  local unreachable=true
  ns pub ip route get 10.1.0.2 >/dev/null 2>&1 && unreachable=false
  ns pub ip route get 10.2.0.2 >/dev/null 2>&1 && unreachable=false
  cleanup
  if [ -z "$result" ]; then
    echo "{\"scenario\":\"$mode\",\"ok\":false,\"error\":\"node A exited with $status and no result\",\"stderr\":\"$(tail -c 600 "$log/a.err" | tr '\n"' ' ')\"}"
    return 1
  fi
  echo "{\"scenario\":\"$mode\",\"privateUnreachable\":$unreachable,\"result\":$result}"
  echo "$result" | grep -q '"ok":true' || return 1
  return 0
}

failed=0
case "$SCENARIO" in
  punch | relay) run_scenario "$SCENARIO" || failed=1 ;;
  all)
    run_scenario punch || failed=1
    run_scenario relay || failed=1
    ;;
  *)
    echo "usage: $0 [punch|relay|all]" >&2
    exit 2
    ;;
esac
exit $failed
