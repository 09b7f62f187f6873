#!/usr/bin/env bash
# NAT remaps and MOBIKE moves of a device fleet (segw-ike-load: segw's own IKE
# engine as the devices, MOBIKE initiator) through a real kernel NAT, against
# segw (segw-dataplane on af_packet + segw-controlplane), asserting what the
# data plane does with each tunnel (its SA inventory: remote address, port,
# UDP encapsulation) and what the control plane logged. Topology and helpers:
# fleet_lib.sh. Scenarios:
#   1. every NAT mapping changes at once (SNAT range + conntrack flush), each
#      device's next IKE message comes through its new mapping: under
#      remap = verify every tunnel moves after the gateway's own check;
#   2. MOBIKE: the devices move out from behind the NAT (UDP encapsulation
#      switched off for their child SAs), then behind it again (on again);
#   3. NO_NATS_ALLOWED through the NAT: UNEXPECTED_NAT_DETECTED, no IKE SA;
#      without a NAT in the path the same request is accepted;
#   4. external move of one IKE SA through segwctl (the REST API).
# Exit 0 only when every check passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 2; }
FLEET_PREFIX=rfl$$
FLEET_DIR=$(mktemp -d /tmp/rfl.XXXXXX)
FLEET_TUNNELS=64
# shellcheck source=fleet_lib.sh
source "$here/fleet_lib.sh"
segwctl=$FLEET_BUILD/tools/segwctl/segwctl
for binary in dataplane/segw-dataplane controlplane/daemon/segw-controlplane tools/ike_load/segw-ike-load \
              controlplane/tools/segwctl-dp tools/segwctl/segwctl; do
  [ -x "$FLEET_BUILD/$binary" ] || { echo "missing $FLEET_BUILD/$binary (build first)" >&2; exit 2; }
done
for cmd in ip iptables-restore conntrack; do
  command -v "$cmd" >/dev/null || { echo "missing $cmd (tools/setup.sh installs it)" >&2; exit 2; }
done
finish() {
  local rc=$?
  fleet_cleanup
  if [ "$rc" -ne 0 ] || [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $FLEET_DIR" >&2; else rm -rf "$FLEET_DIR"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
check() {  # check DESCRIPTION CMD...
  local what=$1 out rc=0; shift
  out=$("$@" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1)); echo "ok   - $what${out:+ ($out)}"
  else
    failed=$((failed + 1)); echo "FAIL - $what${out:+: $out}"
  fi
}
# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() {
  local seconds=$1 i; shift
  for i in $(seq $(( seconds * 10 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  "$@"
}

devices=8
fleet_topology_create
echo "secret-fleet-token-0123456789" > "$FLEET_DIR/api.token"
FLEET_DAEMON_EXTRA="api_token_file = $FLEET_DIR/api.token"
fleet_start_gateway "remap = verify"
fleet_config yes
fleet_start mobile --source-base 100.64.0.1 --count "$devices" --concurrency 8 --hold --no-delete \
  --move-base 203.0.113.1 --move-base 100.66.0.1
mobile_pid=$FLEET_LOAD_PID
established=$(fleet_wait_summary mobile 60)
check "$devices devices establish through the NAT" test "${established:-0}" -eq "$devices"

# All N outbound SAs: remote in RANGE (a grep -E on "ADDRESS PORT ENCAP").
all_paths() {
  local pattern=$1 n
  n=$(fleet_outbound_paths | grep -c -E "$pattern" || true)
  echo "$n of $devices outbound SAs match '$pattern'"
  [ "$n" -eq "$devices" ]
}
check "child SAs in the data plane, UDP-encapsulated to the NAT" \
  wait_for 20 all_paths '^198\.51\.100\.[2-9] [0-9]+ udp '

# 1. Every NAT mapping changes; the devices' next IKE message (a liveness
# check) comes through the new one.
fleet_snat 35000-59999
kill -USR1 "$mobile_pid"
check "NAT remap: every tunnel moved to its new mapping" \
  wait_for 20 all_paths '^198\.51\.100\.[2-9] (3[5-9]|4[0-9]|5[0-9])[0-9]{3} udp '
verified_moves() {
  local n
  n=$(grep -c ' moved .*: verified: ' "$FLEET_DIR/controlplane.log" || true)
  echo "$n verified moves"
  [ "$n" -eq "$devices" ]
}
check "NAT remap: moved after the gateway's own check (verify), one move per IKE SA" verified_moves

# 2. MOBIKE: out from behind the NAT, then behind it again.
kill -USR2 "$mobile_pid"
check "MOBIKE out of the NAT: every tunnel on 203.0.113.x, ESP without UDP" \
  wait_for 20 all_paths '^203\.0\.113\.[0-9]+ [0-9]+ esp '
check "MOBIKE: the gateway logged the moves with encapsulation off" \
  bash -c "n=\$(grep -c 'MOBIKE, verified.*(UDP encapsulation off)' '$FLEET_DIR/controlplane.log'); echo \"\$n\"; [ \"\$n\" -eq $devices ]"
kill -USR2 "$mobile_pid"
check "MOBIKE behind the NAT again: UDP encapsulation back on" \
  wait_for 20 all_paths '^198\.51\.100\.[2-9] [0-9]+ udp '

# 3. NO_NATS_ALLOWED.
# (other ports: the mobile fleet still holds the defaults)
fleet_start nonat --source-base 100.64.1.1 --count 1 --no-nats-allowed --ike-port 10501 --natt-port 14501
fleet_wait_summary nonat 30 > /dev/null
check "NO_NATS_ALLOWED through the NAT: refused with UNEXPECTED_NAT_DETECTED" \
  bash -c "grep -o '\"established\": 0' '$FLEET_DIR/nonat.json' && grep -o 'UNEXPECTED_NAT_DETECTED' '$FLEET_DIR/nonat.json' | head -1"
fleet_start direct --source-base 203.0.113.200 --count 1 --no-nats-allowed --ike-port 10502 --natt-port 14502
fleet_wait_summary direct 30 > /dev/null
check "NO_NATS_ALLOWED without a NAT: accepted" grep -o '"established": 1' "$FLEET_DIR/direct.json"

# 4. External move through the REST API (segwctl).
api() { ip netns exec "$FLEET_NS_GW" "$segwctl" --token-file "$FLEET_DIR/api.token" "$@"; }
first_id=$(api --json list | grep -o '"id": *[0-9]*' | head -1 | grep -o '[0-9]*$')
check "segwctl lists the IKE SAs" test -n "$first_id"
tunnel=$(api --json show "$first_id" | grep -o '"tunnel_id": *[0-9]*' | head -1 | grep -o '[0-9]*$')
check "segwctl move: accepted" api move "$first_id" 198.51.100.77 40077
check "external move: the data plane sends that tunnel to 198.51.100.77:40077" \
  wait_for 10 bash -c "'$FLEET_BUILD/controlplane/tools/segwctl-dp' --channel '$FLEET_PREFIX' --directory '$FLEET_DIR' dump |
    grep ' outbound tunnel $tunnel ' | grep -q -- '-> 198.51.100.77:40077 udp'"
check "external move: recorded as an event" grep -q "IKE SA $first_id moved .*: external: .* -> 198.51.100.77:40077" \
  "$FLEET_DIR/controlplane.log"
check "segwctl move of an unknown IKE SA fails" bash -c "! ip netns exec '$FLEET_NS_GW' '$segwctl' \
  --token-file '$FLEET_DIR/api.token' move 999999 198.51.100.77 40077"

kill -TERM "$mobile_pid" 2>/dev/null || true
wait "$mobile_pid" 2>/dev/null || true
check "the devices saw their MOBIKE updates answered" grep -o "MOBIKE: $(( devices * 2 )) moved, 0 refused" \
  "$FLEET_DIR/mobile.log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
