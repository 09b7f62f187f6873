#!/usr/bin/env bash
# NAT remap end to end: a real strongSwan device (charon with kernel-libipsec,
# no MOBIKE) behind the harness NAT, segw as the responder (segw-dataplane on
# net_af_packet + segw-controlplane), a bidirectional 2 ms UDP stream between
# the device's virtual IP and the core host. The NAT changes the device's
# public port or address under the live tunnel, an attacker replays and
# relays the device's ESP; the profile's `remap = verify|follow|off` decides
# what the gateway does. Every scenario checks the gateway's state before and
# after (its `moved` line, the path the data plane holds, the NAT's conntrack
# mapping), the stream, and that IKE never ran again (same IKE and child SPIs
# on the device, no IKE_SA_INIT on the wire). README.md beside this file.
#
# Usage (root): IKX_SEGW_BUILD=/path/to/build bash tests/integration/remap/run_remap.sh
#   REMAP_PHASES="verify busy follow off"   the phases to run (default all four)
#   REMAP_MAX_INTERRUPTION_MS=3000     the downlink interruption (on the wire) a move may cost
#   IKX_KEEP=1                         keep the run directory (logs, captures)
# Exit 0 only when every check passed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export IKX_WITH_DEV2=0
# shellcheck source=../ike_interop/lib.sh
source "$here/../ike_interop/lib.sh"

[ "$(id -u)" = 0 ] || ikx_die "run as root (network namespaces)"
for cmd in ip iptables conntrack tcpdump swanctl "$IKX_CHARON_BIN" /usr/bin/python3 \
           "$IKX_SEGW_BUILD/dataplane/segw-dataplane" "$IKX_SEGW_BUILD/controlplane/daemon/segw-controlplane" \
           "$IKX_SEGW_BUILD/controlplane/tools/segwctl-dp"; do
  command -v "$cmd" >/dev/null || ikx_die "missing $cmd"
done
iptables -m u32 -h >/dev/null 2>&1 || ikx_die "iptables lacks the u32 match"

IKX_RESPONDER=segw
phases=${REMAP_PHASES:-verify busy follow off}
# The interruption the test accepts (the benchmark measures it): generous,
# since CI runs this on 2 busy cores.
max_ms=${REMAP_MAX_INTERRUPTION_MS:-3000}
# shellcheck source=remap_lib.sh
source "$here/remap_lib.sh"

# ---------------------------------------------------------------- scenarios

# 1. NAT port change (new SNAT range + conntrack flush), device without MOBIKE.
port_change() {  # POLICY RANGE
  local policy=$1 range=$2 m0 m1 n0 e0 sas0 t0 t1 tm path0
  scenario="$policy: port change"
  echo "== scenario $scenario (SNAT range $range), remap = $policy"
  m0=$(nat_mapping); n0=$(moved_count); e0=$(established_count); sas0=$(device_sas); path0=$(segw_out_remote)
  check "before: gateway sends to the NAT mapping" bash -c 'echo "conntrack $1, data plane -> $2"; [ -n "$1" ] && [ "$1" = "$2" ]' _ "$m0" "$path0"
  t0=$(now)
  nat_set_ports_atomic "$range"
  case $policy in
    verify|follow)
      wait_moved "$n0" 5 || true
      tm=$(now)
      check "downlink resumed after the move" wait_downlink "$tm" 100 5
      t1=$(now); m1=$(nat_mapping)
      wan_sync "$t1"
      check "NAT took a new mapping" check_mapping_changed "$m0" "$range"
      if [ "$policy" = verify ]; then
        check "moved after a check answered from the new mapping" check_moved_line verified "$m0" "$m1"
        check "exactly one check sent, to the new mapping" check_checks "$RUN/wan.pcap" "$m1" "$t0" "$t1" 1 1
      else
        check "moved at once (followed the ESP)" check_moved_line "followed ESP" "$m0" "$m1"
        check "no check sent" check_checks "$RUN/wan.pcap" "${m1%:*}" "$t0" "$t1" 0 0
      fi
      check "one move only" bash -c 'n=$(grep -c -E "IKE SA [0-9]+ moved " "$1"); echo "moved lines $2 -> $n"; [ "$n" = $(($2 + 1)) ]' _ "$IKX_DIR/segw/controlplane.log" "$n0"
      check "data plane sends to the new mapping" check_gw_path "$m1"
      check "downlink interruption on the wire below ${max_ms} ms" check_wire_interruption "$t0" "$m1" "$max_ms"
      check "downlink at the device: one gap below 3 s" check_downlink_flows "$t0" "$t1" 3000
      ;;
    off)
      # The window starts once the new rules are in: iptables-restore can
      # take seconds on a loaded runner.
      local tc; tc=$(now)
      sleep 4
      t1=$(now); m1=$(nat_mapping)
      wan_sync "$t1"
      check "NAT took a new mapping" check_mapping_changed "$m0" "$range"
      check "no move" check_no_new_moved "$n0"
      check "data plane still sends to the old mapping" check_gw_path "$m0"
      check "no check sent" check_checks "$RUN/wan.pcap" "${m1%:*}" "$t0" "$t1" 0 0
      check "downlink stays broken (0.5 s .. 4 s after the change)" check_downlink_dead "$((tc + 500000000))" "$t1"
      check "uplink still reaches the core (authenticated ESP is accepted)" check_uplink_flows "$((tc + 500000000))" "$t1"
      check "data plane saw the new source" bash -c 'n=$1; echo "inbound new_source_packets $n"; [ "${n:-0}" -gt 0 ]' _ "$(segw_in_field new_source_packets)"
      # Restore: the NAT maps dev1 back to the old port; the tunnel never left it.
      # The gateway's downlink to that port must not reach the NAT before
      # dev1's next uplink packet: it would take the port's conntrack entry
      # first, and the SNAT of the uplink would then find the port in use.
      local t2; t2=$(now)
      ikx_ns "$IKX_NS_NAT" iptables -t raw -I PREROUTING -i wan -p udp --sport 4500 -j DROP
      nat_set_ports_atomic "${m0##*:}-${m0##*:}"
      sleep 0.2
      ikx_ns "$IKX_NS_NAT" iptables -t raw -D PREROUTING -i wan -p udp --sport 4500 -j DROP
      check "restored: NAT maps back to ${m0}" bash -c 'echo "conntrack $1"; [ "$1" = "$2" ]' _ "$(nat_mapping)" "$m0"
      check "restored: downlink flows again" wait_downlink "$t2" 100 5
      check "still no move" check_no_new_moved "$n0"
      t0=$t2
      ;;
  esac
  check "no IKE re-run (device SPIs unchanged)" check_device_sas_same "$sas0"
  check "no IKE re-run (wire, gateway log)" check_no_ike_rerun "$t0" "$e0"
}

# 2. The NAT moves to a second public address.
address_change() {
  local m0 m1 n0 e0 sas0 t0 t1
  scenario="verify: address change"
  echo "== scenario $scenario: the NAT SNATs to $IKX_NAT_PUBLIC_IP2 instead of $IKX_NAT_PUBLIC_IP"
  m0=$(nat_mapping); n0=$(moved_count); e0=$(established_count); sas0=$(device_sas)
  t0=$(now)
  nat_set_public_ip "$IKX_NAT_PUBLIC_IP2"
  wait_moved "$n0" 5 || true
  check "downlink resumed after the move" wait_downlink "$(now)" 100 5
  t1=$(now); m1=$(nat_mapping)
  wan_sync "$t1"
  check "NAT maps to its second address" bash -c 'echo "conntrack $1 -> $2"; [[ $2 == "$3":* ]]' _ "$m0" "$m1" "$IKX_NAT_PUBLIC_IP2"
  check "moved after a check answered from the new address" check_moved_line verified "$m0" "$m1"
  check "exactly one check sent, to the new address" check_checks "$RUN/wan.pcap" "$m1" "$t0" "$t1" 1 1
  check "data plane sends to the new address" check_gw_path "$m1"
  check "downlink interruption on the wire below ${max_ms} ms" check_wire_interruption "$t0" "$m1" "$max_ms"
  check "no IKE re-run (device SPIs unchanged)" check_device_sas_same "$sas0"
  check "no IKE re-run (wire, gateway log)" check_no_ike_rerun "$t0" "$e0"
}

# 4a. The attacker replays dev1's ESP captured earlier, from its own address.
attack_replay() {
  local n0 d0 s0 path0 t0 t1 j replayed d1 s1
  scenario="verify: replay"
  echo "== scenario $scenario: $IKX_ATK_IP replays dev1's captured ESP-in-UDP"
  capture_start atk "$IKX_NS_ATK" eth0 "$RUN/atk-replay.pcap" udp || { check "capture at the attacker" false; return; }
  # 300 fresh uplink ESP packets of dev1 as they leave the NAT.
  ip netns exec "$IKX_NS_NAT" timeout 5 tcpdump -i wan -n -s 0 -c 300 -w "$RUN/captured.pcap" \
    "udp and src host $IKX_NAT_PUBLIC_IP and dst port 4500 and udp[8:4] != 0" 2>/dev/null
  n0=$(moved_count); path0=$(segw_out_remote)
  sleep 0.3
  d0=$(segw_in_field drops); s0=$(segw_in_field new_source_packets)
  t0=$(now)
  j=$(ip netns exec "$IKX_NS_ATK" "${STREAM[@]}" replay --pcap "$RUN/captured.pcap" --bind "$IKX_ATK_IP:4500" --to "$GW_NATT")
  replayed=$(json "$j" replayed)
  sleep 1.5
  t1=$(now)
  bg_stop atk
  d1=$(segw_in_field drops); s1=$(segw_in_field new_source_packets)
  check "replayed dev1's packets" bash -c 'echo "replayed $1 ESP packets from '"$IKX_ATK_IP"':4500"; [ "${1:-0}" -ge 100 ]' _ "$replayed"
  # Every replayed packet that reached the SA was dropped: none counts as
  # a new source. (On a starved runner some never reach it: af_packet.)
  check "the replay window dropped them, none was accepted" bash -c 'echo "inbound SA drops $1 -> $2 (of $5 replayed), new_source_packets $3 -> $4"; [ $(($2 - $1)) -ge 10 ] && [ "$3" = "$4" ]' _ "$d0" "$d1" "$s0" "$s1" "$replayed"
  check "no move" check_no_new_moved "$n0"
  check "data plane path unchanged" check_gw_path "$path0"
  check "no check sent to the attacker" check_checks "$RUN/atk-replay.pcap" "$IKX_ATK_IP" "$t0" "$t1" 0 0
  check "nothing at all from the gateway reached the attacker" bash -c 'j=$1; echo "$j"; [[ $j == *"\"informational_requests\": 0,"*"\"esp\": 0, \"other\": 0,"* ]]' _ "$(gw_requests "$RUN/atk-replay.pcap" "$IKX_ATK_IP" 0)"
  check "downlink unaffected" check_downlink_flows "$t0" "$t1" 3000
}

# 4b. On-path attacker: the NAT drops dev1's uplink ESP, a sniffer on its LAN
# side grabs each fresh packet and the attacker sends it on from its own
# address/port. Under verify: no move, nothing reaches the attacker but
# (rate-limited) checks, which it cannot answer. Then the rule goes and the
# tunnel still works on the old path.
attack_relay() {
  local n0 s0 path0 t0 t1 j rule
  scenario="verify: on-path relay"
  echo "== scenario $scenario: dev1's uplink ESP withheld and re-sent from $IKX_ATK_IP:4500"
  capture_start atk "$IKX_NS_ATK" eth0 "$RUN/atk-relay.pcap" udp || { check "capture at the attacker" false; return; }
  n0=$(moved_count); path0=$(segw_out_remote); s0=$(segw_in_field new_source_packets)
  rule=(FORWARD -i lan -o wan -s "$IKX_DEV1_IP" -p udp --sport 4500 --dport 4500 -m u32 ! --u32 "0>>22&0x3C@8=0" -j DROP)
  ( ip netns exec "$IKX_NS_NAT" "${STREAM[@]}" sniff --iface lan1 --src "$IKX_DEV1_IP" --pidfile "$RUN/sniff.pid" |
    ip netns exec "$IKX_NS_ATK" "${STREAM[@]}" resend --bind "$IKX_ATK_IP:4500" --to "$GW_NATT" \
      --pidfile "$RUN/resend.pid" --count-file "$RUN/resent.count" ) 2> "$RUN/relay.log" &
  relay_pipeline=$!
  sleep 0.5
  t0=$(now)
  ikx_ns "$IKX_NS_NAT" iptables -I "${rule[@]}"
  sleep 5
  t1=$(now)
  check "the NAT withheld dev1's uplink ESP" bash -c 'n=$(ip netns exec "$1" iptables -L FORWARD -v -x -n | awk "/DROP/ && /u32/ {print \$1; exit}"); echo "dropped by the rule: ${n:-?}"; [ "${n:-0}" -ge 100 ]' _ "$IKX_NS_NAT"
  check "data plane took the relayed packets (authenticated, from a new source)" bash -c 'echo "inbound new_source_packets $1 -> $2"; [ $(($2 - $1)) -ge 100 ]' _ "$s0" "$(segw_in_field new_source_packets)"
  check "no move" check_no_new_moved "$n0"
  check "data plane path unchanged" check_gw_path "$path0"
  bg_stop atk   # tcpdump writes out what it still holds
  j=$(gw_requests "$RUN/atk-relay.pcap" "$IKX_ATK_IP" "$t0" "$t1")
  # At most about one INFORMATIONAL a second reaches the attacker, counting
  # every datagram (a retransmission is as good a reflector as a new check).
  check "checks to the attacker rate-limited (at most ~1/s over 5 s)" bash -c 'echo "$1"; d=$(sed -n "s/.*\"distinct_message_ids\": \([0-9]*\).*/\1/p" <<<"$1"); r=$(sed -n "s/.*\"informational_requests\": \([0-9]*\).*/\1/p" <<<"$1"); [ "$d" -ge 1 ] && [ "$r" -le 6 ]' _ "$j"
  check "no downlink ESP reached the attacker" bash -c 'echo "ESP from the gateway at the attacker: $1"; [ "$1" = 0 ]' _ "$(json "$j" esp)"
  check "downlink to dev1 kept flowing on the old path" check_downlink_flows "$t0" "$t1" 3000
  ikx_ns "$IKX_NS_NAT" iptables -D "${rule[@]}"
  pid_stop "$RUN/sniff.pid"; pid_stop "$RUN/resend.pid"
  wait "$relay_pipeline" 2>/dev/null; relay_pipeline=
  check "relay resent dev1's packets" bash -c 'echo "resent $(cat "$1" 2>/dev/null)"; [ "$(cat "$1" 2>/dev/null || echo 0)" -ge 100 ]' _ "$RUN/resent.count"
  t1=$(now)
  check "after the attack: downlink flows" wait_downlink "$t1" 100 5
  check "after the attack: uplink flows on the old path" check_uplink_flows "$t1" "$(now)"
  check "after the attack: data plane path unchanged" check_gw_path "$path0"
  check "after the attack: conntrack mapping unchanged" bash -c 'echo "conntrack $1"; [ "$1" = "$2" ]' _ "$(nat_mapping)" "$path0"
}

# 3. A remap while one of the gateway's own requests is outstanding: the
# NAT drops dev1's IKE messages (not its ESP) until segw's liveness check
# (dpd_interval_s 1 here) goes unanswered, then the port changes and the
# block goes. The gateway must still verify the new mapping and move before
# the liveness check gives up (dpd_timeout_s 6): the tunnel is alive, only
# its address changed.
busy_remap() {
  local n0 m0 m1 t_rule t0 t1 j i rule range=45000-45999
  scenario="verify: remap during a liveness check"
  echo "== scenario $scenario: segw's liveness check is unanswered when the port changes"
  n0=$(moved_count); m0=$(nat_mapping)
  rule=(FORWARD -i lan -o wan -s "$IKX_DEV1_IP" -p udp --sport 4500 --dport 4500 -m u32 --u32 "0>>22&0x3C@8=0" -j DROP)
  t_rule=$(now)
  ikx_ns "$IKX_NS_NAT" iptables -I "${rule[@]}"
  for i in $(seq 60); do
    j=$(gw_requests "$RUN/wan.pcap" "$m0" "$t_rule")
    [ "$(json "$j" informational_requests)" -ge 1 ] && break
    sleep 0.1
  done
  check "segw's liveness check to $m0 is outstanding" bash -c 'echo "$1"; [[ $1 != *"\"informational_requests\": 0,"* ]]' _ "$j"
  t0=$(now)
  nat_set_ports_atomic "$range"
  ikx_ns "$IKX_NS_NAT" iptables -D "${rule[@]}"
  wait_moved "$n0" 5 || true
  t1=$(now); m1=$(nat_mapping)
  check "NAT took a new mapping" check_mapping_changed "$m0" "$range"
  check "moved to the new mapping within 5 s" check_moved_line verified "$m0" "$m1"
  check "downlink resumed after the move" wait_downlink "$t1" 100 2
  sleep 6
  check "IKE SA still up after the liveness timeout" bash -c 'l=$(grep -E "IKE SA [0-9]+ (deleted|failed)" "$1" | tail -1); echo "${l:-no deleted/failed line}"; [ -z "$l" ]' _ "$IKX_DIR/segw/controlplane.log"
}

phase() {  # POLICY
  local policy=$1 sas0 t0 e0
  echo "== phase remap = $policy"
  scenario="$policy: setup"
  if [ "$policy" = busy ]; then
    # remap = verify with segw's liveness checks after 1 s of IKE silence.
    IKX_SEGW_DPD=1 IKX_SEGW_DPD_TIMEOUT=6 tunnel_up verify busy || { tunnel_down; return; }
  else
    # No liveness checks of segw's own in the way (phase busy is about them).
    IKX_SEGW_DPD=300 tunnel_up "$policy" || { tunnel_down; return; }
  fi
  sas0=$(device_sas); t0=$(now); e0=$(established_count)
  case $policy in
    verify)
      port_change verify 41000-41999
      address_change
      attack_replay
      attack_relay
      # Once more after the attacker: the IKE SA must still be able to
      # verify a real remap (the unanswered checks must not have broken it).
      port_change verify 42000-42999
      ;;
    busy) busy_remap ;;
    follow) port_change follow 43000-43999 ;;
    off) port_change off 44000-44999 ;;
  esac
  scenario="$policy: phase"
  check "whole phase: one IKE SA, SPIs unchanged" check_device_sas_same "$sas0"
  check "whole phase: no IKE_SA_INIT, no new IKE SA" check_no_ike_rerun "$t0" "$e0"
  tunnel_down
  # Back to the first public address for the next phase.
  IKX_NAT_PUBLIC_IP=198.51.100.2
}

ikx_trap
trap 'remap_cleanup; ikx_teardown' EXIT
topo_create
attacker_create
certs_generate
ikx_device_confdir dev1 "$IKX_DEV1_ID" "$IKX_DIR/dev1"
started=$(date +%s)

for p in $phases; do phase "$p"; done

echo "== $passed checks passed, $failed failed in $(( $(date +%s) - started )) s (run dir $IKX_DIR)"
if [ "$failed" != 0 ]; then
  printf '   failed: %s\n' "${failed_names[@]}"
  echo "---- segw-controlplane logs"; for f in "$IKX_DIR"/segw/controlplane.*.log; do echo "-- $f"; tail -15 "$f"; done
  echo "---- dev1 charon log (last lines)"; charon_log_tail dev1 30
  IKX_KEEP=1
  exit 1
fi
exit 0
