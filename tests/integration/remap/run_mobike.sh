#!/usr/bin/env bash
# MOBIKE (RFC 4555) with a real peer: a strongSwan device (charon,
# kernel-libipsec, mobike = yes) behind the harness NAT
# (tests/integration/ike_interop/lib.sh) against segw (segw-dataplane on
# af_packet + segw-controlplane, remap = verify). The device moves, and charon
# notices it by itself (kernel address events), probes the new path (an
# empty INFORMATIONAL from the new address: for the gateway an authenticated
# request from a new endpoint, which it verifies with its own COOKIE2 check
# before moving) and sends UPDATE_SA_ADDRESSES from there:
#   1. to another subnet behind the same NAT (a new NAT mapping);
#   2. out from behind the NAT, to a public address of its own. charon's
#      kernel-libipsec in this strongSwan (5.9.8) only does ESP in UDP, so its
#      NAT-D fakes a NAT and the gateway must keep UDP encapsulation: what the
#      peer's NAT-D says decides (the fleet test, run_fleet.sh, covers the
#      switch to plain ESP with our own MOBIKE initiator);
#   3. behind the NAT again.
# After each move: the gateway logged a MOBIKE move to the device's new public
# address:port after its return routability check and counted the
# UPDATE_SA_ADDRESSES (REST /v1/stats), the data plane sends the tunnel there,
# pings cross the tunnel both ways, and the IKE SA is the one from before (same
# IKE SPIs, no new IKE SA). strongSwan's kernel-libipsec cannot change an
# installed SA's addresses, so charon itself rekeys its child SA after each
# update; that rekey is the device's choice, not a re-run of IKE.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export IKX_MOBIKE=yes IKX_RESPONDER=segw IKX_WITH_DEV2=0
# shellcheck source=../ike_interop/lib.sh
source "$here/../ike_interop/lib.sh"
[ "$(id -u)" = 0 ] || ikx_die "run as root (network namespaces)"

DEV1_SUBNET2_IP=192.168.2.10
DEV1_PUBLIC_IP=198.51.100.70
conn=psk-gcm
passed=0
failed=0
check() {  # DESCRIPTION CMD...
  local what=$1 out rc=0; shift
  out=$("$@" 2>&1) || rc=$?
  if [ $rc = 0 ]; then
    passed=$((passed + 1)); printf '  ok    %s%s\n' "$what" "${out:+: $out}"
  else
    failed=$((failed + 1)); printf '  FAIL  %s%s\n' "$what" "${out:+: $out}"
  fi
  return 0
}
wait_for() {  # SECONDS CMD...
  local seconds=$1 i; shift
  for i in $(seq $(( seconds * 5 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  "$@"
}
trap 'ikx_teardown' EXIT
trap 'exit 130' INT TERM

topo_create
certs_generate
ikx_device_confdir dev1 "$IKX_DEV1_ID" "$IKX_DIR/dev1"
# The device's second way out: a direct link through the nat namespace,
# routed there without translation (proxy ARP on the "internet" side).
ikx_veth "$IKX_NS_DEV1" eth1 "$IKX_NS_NAT" dev1pub
ikx_ns "$IKX_NS_NAT" sysctl -qw net.ipv4.conf.dev1pub.proxy_arp=1 net.ipv4.conf.wan.proxy_arp=1
ip -n "$IKX_NS_NAT" route add "$DEV1_PUBLIC_IP/32" dev dev1pub
ikx_ns "$IKX_NS_NAT" iptables -t nat -I POSTROUTING -s "$DEV1_PUBLIC_IP" -j ACCEPT
# And a second subnet on the NAT's LAN.
ip -n "$IKX_NS_NAT" addr add 192.168.2.1/24 dev lan

segw_dir=$IKX_DIR/segw
responder_start psk || ikx_die "segw did not start"
start_charon "$IKX_NS_DEV1" dev1 "$IKX_DIR/dev1" || ikx_die "charon did not start"
swanctl dev1 --initiate --ike "$conn" --child "$conn" --timeout 20 > "$IKX_DIR/initiate.out" 2>&1 || true
check "IKE SA and child SA up (MOBIKE negotiated)" wait_for_sa dev1 "$conn" 10
raw=$(sa_raw dev1 --ike "$conn")
vip4=$(sa_field local-vips <<<"$raw" | tr ' ' '\n' | grep -v : || true)
spis() {  # the device's IKE SPIs and child SPIs, one line
  local r
  r=$(sa_raw dev1 --ike "$conn")
  echo "$(sa_field initiator-spi <<<"$r") $(sa_field responder-spi <<<"$r")"
}
spis_before=$(spis)
established_before=$(grep -c " established " "$segw_dir/controlplane.log" || true)

ping_both() {
  local out
  out=$(ip netns exec "$IKX_NS_DEV1" ping -n -c 3 -i 0.2 -W 2 -I "$vip4" "$IKX_CORE_IP" 2>&1) || true
  grep -q ' 0% packet loss' <<<"$out" || { echo "uplink: $(grep transmitted <<<"$out")"; return 1; }
  out=$(ip netns exec "$IKX_NS_CORE" ping -n -c 3 -i 0.2 -W 2 "$vip4" 2>&1) || true
  grep -q ' 0% packet loss' <<<"$out" || { echo "downlink: $(grep transmitted <<<"$out")"; return 1; }
  echo "3/3 each way"
}
check "traffic through the tunnel" wait_for 10 ping_both

moves() { grep -c " moved " "$segw_dir/controlplane.log" || true; }
stat() {  # COUNTER: segw-controlplane's engine counter (REST API, loopback)
  curl -s --max-time 5 "http://127.0.0.1:8443/v1/stats" |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
updates_counted() {  # N
  local n
  n=$(stat mobike_updates_received)
  echo "mobike_updates_received=$n"
  [ "$n" = "$1" ]
}
gw_remote() {  # the data plane's outbound path: ADDRESS:PORT udp|esp
  "$IKX_SEGW_BUILD/controlplane/tools/segwctl-dp" --channel "$IKX_PREFIX-segw" --directory "$segw_dir" dump |
    awk '$1 == "spi" && $3 == "outbound" && $9 == "->" { print $10, $11; exit }'
}
expect_move() {  # N: until the gateway logged N MOBIKE moves
  local n
  n=$(moves)
  echo "$n MOBIKE moves logged; last: $(grep " moved " "$segw_dir/controlplane.log" | tail -1 | sed 's/.*children [0-9]*: //')"
  [ "$n" -ge "$1" ]
}
path_is() {  # REGEX: the data plane's outbound path matches
  local path
  path=$(gw_remote)
  echo "data plane sends to $path"
  grep -q -E "$1" <<<"$path"
}
same_spis() {
  local now
  now=$(spis)
  echo "SPIs $now"
  [ "$now" = "$spis_before" ]
}
no_new_ike_sa() {
  local n
  n=$(grep -c " established " "$segw_dir/controlplane.log" || true)
  echo "$n IKE SA(s) established in all"
  [ "$n" = "$established_before" ]
}
after_move() {  # LABEL N PATH_REGEX
  check "$1: the gateway moved the IKE SA after its return routability check" wait_for 15 expect_move "$2"
  check "$1: the data plane sends the tunnel to the new path" wait_for 5 path_is "$3"
  check "$1: traffic both ways" wait_for 10 ping_both
  check "$1: UPDATE_SA_ADDRESSES received and counted" updates_counted "$2"
  check "$1: same IKE SA (IKE SPIs)" same_spis
  check "$1: no new IKE SA" no_new_ike_sa
}

# 1. Another subnet behind the same NAT.
old_path=$(gw_remote)
ip -n "$IKX_NS_DEV1" addr add "$DEV1_SUBNET2_IP/24" dev eth0
ip -n "$IKX_NS_DEV1" route replace default via 192.168.2.1 src "$DEV1_SUBNET2_IP"
ip -n "$IKX_NS_DEV1" addr del "$IKX_DEV1_IP/24" dev eth0
after_move "subnet change" 1 "^$IKX_NAT_PUBLIC_IP:[0-9]+ udp"
check "subnet change: a new NAT mapping" bash -c "p=\$(echo '$(gw_remote)'); echo \"\$p (was $old_path)\"; [ \"\$p\" != '$old_path' ]"

# 2. Out from behind the NAT: a public address on the direct link.
ip -n "$IKX_NS_DEV1" addr add "$DEV1_PUBLIC_IP/32" dev eth1
ip -n "$IKX_NS_DEV1" route replace default dev eth1 src "$DEV1_PUBLIC_IP"
ip -n "$IKX_NS_DEV1" addr del "$DEV1_SUBNET2_IP/24" dev eth0
after_move "out of the NAT" 2 "^$DEV1_PUBLIC_IP:4500 udp"

# 3. Behind the NAT again.
ip -n "$IKX_NS_DEV1" addr add "$IKX_DEV1_IP/24" dev eth0
ip -n "$IKX_NS_DEV1" route replace default via "$IKX_LAN_GW" src "$IKX_DEV1_IP"
ip -n "$IKX_NS_DEV1" addr del "$DEV1_PUBLIC_IP/32" dev eth1
after_move "behind the NAT again" 3 "^$IKX_NAT_PUBLIC_IP:[0-9]+ udp"

if [ "$failed" -gt 0 ]; then
  echo "---- segw-controlplane"; tail -20 "$segw_dir/controlplane.log"
  echo "---- charon dev1"; charon_log_tail dev1 40
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
