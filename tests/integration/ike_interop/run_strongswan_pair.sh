#!/usr/bin/env bash
# Self-test of the IKEv2 interop harness: a strongSwan initiator in dev1 (behind
# the NAT) against the responder chosen by IKX_RESPONDER (default: strongSwan in
# gw on 198.51.100.1), for PSK, RSA and ECDSA certificates x both proposal
# suites, then two devices behind the same NAT at once. Each scenario checks:
# SA up, negotiated algorithms, authentication method, virtual IPv4 + IPv6 from
# the pools, NAT detected and ESP in UDP 4500 through the NAT mapping, and
# pings both ways (IPv4 and IPv6) through the tunnel with the ESP counters
# moving. Exit 0 only when every check passed.
#
# Usage (root): bash tests/integration/ike_interop/run_strongswan_pair.sh
#   IKX_SCENARIOS="psk-gcm rsa-cbc"   run only these (AUTH-SUITE, AUTH psk|rsa|ecdsa,
#                                     SUITE gcm|cbc); default all six
#   IKX_WITH_DEV2=0                   skip the two-devices scenario
#   IKX_RESPONDER=segw                run against segw instead (once wired)
#   IKX_KEEP=1                        keep the run directory (logs, configs, PKI)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export IKX_WITH_DEV2=${IKX_WITH_DEV2:-1}
# shellcheck source=lib.sh
source "$here/lib.sh"

[ "$(id -u)" = 0 ] || ikx_die "run as root (network namespaces)"
for cmd in ip iptables conntrack openssl ping "$IKX_CHARON_BIN"; do
  command -v "$cmd" >/dev/null || ikx_die "missing $cmd (tools/setup.sh installs it)"
done
command -v swanctl >/dev/null || ikx_die "missing swanctl (strongswan-swanctl)"

scenarios=${IKX_SCENARIOS:-psk-gcm psk-cbc rsa-gcm rsa-cbc ecdsa-gcm ecdsa-cbc}
passed=0
failed=0
failed_names=()
scenario=

# check DESCRIPTION CMD...: runs CMD, prints ok/FAIL with DESCRIPTION and
# whatever CMD wrote on stdout (its evidence), counts the result.
check() {
  local what=$1 out rc=0; shift
  out=$("$@" 2>&1) || rc=$?
  if [ $rc = 0 ]; then
    passed=$((passed + 1)); printf '  ok    [%s] %s%s\n' "$scenario" "$what" "${out:+: $out}"
  else
    failed=$((failed + 1)); failed_names+=("$scenario: $what")
    printf '  FAIL  [%s] %s%s\n' "$scenario" "$what" "${out:+: $out}"
  fi
  return 0
}

# expect_eq LABEL ACTUAL EXPECTED: prints "label=actual", fails if different.
expect_eq() {
  echo "$1=$2"
  [ "$2" = "$3" ] || { echo "(expected $3)"; return 1; }
}

# Expected negotiated algorithms per suite (vici list-sas names).
declare -A want_ike=([gcm]="AES_GCM_16/256/-/PRF_HMAC_SHA2_256/ECP_256"
                     [cbc]="AES_CBC/128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048")
declare -A want_esp=([gcm]="AES_GCM_16/256/-" [cbc]="AES_CBC/128/HMAC_SHA2_256_128")
declare -A want_auth=([psk]="pre-shared key" [rsa]="RSA" [ecdsa]="ECDSA")

ike_algs() {  # raw list-sas (IKE part, before child-sas) -> ENCR/KEY/INTEG/PRF/DH
  local ike=${1%%child-sas*}
  printf '%s/%s/%s/%s/%s' "$(sa_field encr-alg <<<"$ike")" "$(sa_field encr-keysize <<<"$ike")" \
    "$(sa_field integ-alg <<<"$ike" | grep . || echo -)" "$(sa_field prf-alg <<<"$ike")" \
    "$(sa_field dh-group <<<"$ike")"
}
esp_algs() {  # raw list-sas -> child ENCR/KEY/INTEG
  local child=${1#*child-sas}
  printf '%s/%s/%s' "$(sa_field encr-alg <<<"$child")" "$(sa_field encr-keysize <<<"$child")" \
    "$(sa_field integ-alg <<<"$child" | grep . || echo -)"
}

# The authentication of the gateway as the initiator logged it.
check_peer_auth() {  # NAME AUTH
  local line
  line=$(grep -o "authentication of '$IKX_GW_ID' with [^']* successful" \
           "$IKX_DIR/charon/$1/charon.log" | tail -1)
  echo "${line:-no successful authentication of $IKX_GW_ID logged}"
  [[ $line == *"${want_auth[$2]}"* ]]
}

# VIPs: one IPv4 from IKX_POOL4 and one IPv6 from IKX_POOL6.
check_vips() {  # VIP4 VIP6
  echo "virtual IPs $1 $2"
  [[ $1 == 10.64.0.* ]] && [[ $2 == fd00:64::* ]]
}

# The NAT's mapping of DEV_IP:4500, as conntrack shows it: prints the public port.
nat_port_of() {  # DEV_IP
  nat_show_conntrack | awk -v ip="$1" '
    $0 ~ "src=" ip " " && / sport=4500 / {
      n = 0
      for (i = 1; i <= NF; i++) if ($i ~ /^dport=/) { n++; if (n == 2) { sub("dport=", "", $i); print $i; exit } }
    }'
}

check_nat_mapping() {  # DEV_IP
  local port lo=${IKX_NAT_PORTS%-*} hi=${IKX_NAT_PORTS#*-}
  port=$(nat_port_of "$1")
  echo "conntrack: $1:4500 -> $IKX_NAT_PUBLIC_IP:${port:-none} (SNAT range ${IKX_NAT_PORTS:-none})"
  [ -n "$port" ] || return 1
  [ -z "$IKX_NAT_PORTS" ] || { [ "$port" -ge "$lo" ] && [ "$port" -le "$hi" ]; }
}

# The responder (strongSwan only) sees the device at the NAT's public address
# and the mapped port, and flags the peer as behind NAT.
check_responder_view() {  # DEV_ID DEV_IP
  local raw host port nat mapped
  raw=$(sa_raw gw | grep "remote-id=$1 " || true)
  host=$(sa_field remote-host <<<"$raw"); port=$(sa_field remote-port <<<"$raw")
  nat=$(sa_field nat-remote <<<"$raw"); mapped=$(nat_port_of "$2")
  echo "gw sees $1 at $host[$port], nat-remote=$nat"
  [ "$host" = "$IKX_NAT_PUBLIC_IP" ] && [ "$port" = "$mapped" ] && [ "$nat" = yes ]
}

# ping_check NS SRC DST [-6]: 3 echo requests from SRC, all answered.
ping_check() {
  local ns=$1 src=$2 dst=$3 out
  shift 3
  out=$(ip netns exec "$ns" ping "$@" -n -c 3 -i 0.2 -W 2 ${src:+-I "$src"} "$dst" 2>&1) || true
  grep -E 'packets transmitted' <<<"$out" || echo "$out" | tail -2
  grep -q -E ' 3 received, 0% packet loss' <<<"$out"
}

# The child SA's ESP packet counters moved by at least N each way.
check_esp_counters() {  # NAME CHILD IN0 OUT0 MIN
  local raw pin pout
  raw=$(sa_raw "$1" --child "$2")
  pin=$(sa_field packets-in <<<"${raw#*child-sas}"); pout=$(sa_field packets-out <<<"${raw#*child-sas}")
  echo "ESP packets in $3 -> $pin, out $4 -> $pout (at least +$5 each way)"
  [ $((pin - $3)) -ge "$5" ] && [ $((pout - $4)) -ge "$5" ]
}

check_nat_4500() {  # OUT0 IN0 MIN
  local o i
  o=$(nat_count_4500 out); i=$(nat_count_4500 in)
  echo "UDP 4500 through the NAT: out $1 -> $o, in $2 -> $i"
  [ $((o - $1)) -ge "$3" ] && [ $((i - $2)) -ge "$3" ]
}

# Traffic both ways, IPv4 and IPv6, through DEV's tunnel (CHILD on charon DEV).
check_traffic() {  # DEV NS CHILD VIP4 VIP6
  local dev=$1 ns=$2 child=$3 v4=$4 v6=$5 raw in0 out0 nat_o nat_i
  raw=$(sa_raw "$dev" --child "$child")
  in0=$(sa_field packets-in <<<"${raw#*child-sas}"); out0=$(sa_field packets-out <<<"${raw#*child-sas}")
  nat_o=$(nat_count_4500 out); nat_i=$(nat_count_4500 in)
  check "ping $dev($v4) -> core $IKX_CORE_IP" ping_check "$ns" "$v4" "$IKX_CORE_IP"
  check "ping core -> $dev($v4)" ping_check "$IKX_NS_CORE" "" "$v4"
  check "ping6 $dev($v6) -> core $IKX_CORE_IP6" ping_check "$ns" "$v6" "$IKX_CORE_IP6" -6
  check "ping6 core -> $dev($v6)" ping_check "$IKX_NS_CORE" "" "$v6" -6
  # 4 pings x 3 requests: 12 packets each way at least, all in ESP.
  check "ESP counters of $child on $dev" check_esp_counters "$dev" "$child" "$in0" "$out0" 12
  check "ESP-in-UDP crossed the NAT" check_nat_4500 "$nat_o" "$nat_i" 12
}

show_logs() {
  local name
  for name in "$@"; do
    echo "---- last lines of charon '$name' log ($IKX_DIR/charon/$name/charon.log)"
    charon_log_tail "$name" 25
  done
}

# One scenario: AUTH-SUITE with dev1.
run_scenario() {
  local auth=${1%-*} suite=${1#*-} raw vip4 vip6 failed0=$failed
  scenario=$1
  echo "== scenario $scenario: auth $auth, IKE ${IKX_IKE_PROPOSAL[$suite]}, ESP ${IKX_ESP_PROPOSAL[$suite]}, responder $IKX_RESPONDER"
  nat_flush_conntrack
  if ! responder_start "$auth"; then
    check "responder started" false; return 0
  fi
  if ! start_charon "$IKX_NS_DEV1" dev1 "$IKX_DIR/dev1"; then
    check "initiator started" false; responder_stop; return 0
  fi
  swanctl dev1 --initiate --ike "$scenario" --child "$scenario" --timeout 20 \
    > "$IKX_DIR/initiate-$scenario.out" 2>&1 || true
  check "IKE_SA + CHILD_SA $scenario established" wait_for_sa dev1 "$scenario" 10
  raw=$(sa_raw dev1 --ike "$scenario")
  check "IKE proposal" expect_eq ike "$(ike_algs "$raw")" "${want_ike[$suite]}"
  check "ESP proposal" expect_eq esp "$(esp_algs "$raw")" "${want_esp[$suite]}"
  check "gateway authenticated by ${want_auth[$auth]}" check_peer_auth dev1 "$auth"
  vip4=$(sa_field local-vips <<<"$raw" | tr ' ' '\n' | grep -v : || true)
  vip6=$(sa_field local-vips <<<"$raw" | tr ' ' '\n' | grep : || true)
  check "virtual IPs from the pools" check_vips "$vip4" "$vip6"
  check "initiator detected its NAT" expect_eq nat-local "$(sa_field nat-local <<<"$raw")" yes
  check "IKE moved to port 4500" expect_eq remote-port "$(sa_field remote-port <<<"$raw")" 4500
  check "ESP UDP-encapsulated" expect_eq encap "$(sa_field encap <<<"${raw#*child-sas}")" yes
  check "NAT mapping in conntrack" check_nat_mapping "$IKX_DEV1_IP"
  if responder_is_strongswan; then
    check "responder sees device behind NAT" check_responder_view "$IKX_DEV1_ID" "$IKX_DEV1_IP"
  fi
  if [ -n "$vip4" ] && [ -n "$vip6" ]; then
    check_traffic dev1 "$IKX_NS_DEV1" "$scenario" "$vip4" "$vip6"
  fi
  [ "$failed" = "$failed0" ] || show_logs dev1 gw
  stop_charon dev1
  responder_stop
}

# Two devices behind the one NAT at once (PSK, GCM suite): distinct public
# ports, distinct virtual IPs, both tunnels carry traffic.
run_two_devices() {
  local failed0=$failed raw1 raw2 a1 a2 p1 p2
  scenario=dev1+dev2
  echo "== scenario $scenario: two devices behind one NAT, psk-gcm, responder $IKX_RESPONDER"
  nat_flush_conntrack
  if ! responder_start psk; then check "responder started" false; return 0; fi
  if ! start_charon "$IKX_NS_DEV1" dev1 "$IKX_DIR/dev1" || \
     ! start_charon "$IKX_NS_DEV2" dev2 "$IKX_DIR/dev2"; then
    check "initiators started" false; stop_charon dev1; responder_stop; return 0
  fi
  # Both at once; wait for these two only (a bare wait would wait for charon).
  local w1 w2
  swanctl dev1 --initiate --ike psk-gcm --child psk-gcm --timeout 20 > "$IKX_DIR/initiate-two-1.out" 2>&1 &
  w1=$!
  swanctl dev2 --initiate --ike psk-gcm --child psk-gcm --timeout 20 > "$IKX_DIR/initiate-two-2.out" 2>&1 &
  w2=$!
  wait "$w1" "$w2" || true
  check "dev1 SA established" wait_for_sa dev1 psk-gcm 10
  check "dev2 SA established" wait_for_sa dev2 psk-gcm 10
  raw1=$(sa_raw dev1 --ike psk-gcm); raw2=$(sa_raw dev2 --ike psk-gcm)
  a1=$(sa_field local-vips <<<"$raw1"); a2=$(sa_field local-vips <<<"$raw2")
  p1=$(nat_port_of "$IKX_DEV1_IP"); p2=$(nat_port_of "$IKX_DEV2_IP")
  check "distinct virtual IPs" bash -c 'echo "dev1 [$1], dev2 [$2]"; [ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ]' _ "$a1" "$a2"
  check "distinct NAT ports" bash -c 'echo "dev1 -> :$1, dev2 -> :$2"; [ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ]' _ "$p1" "$p2"
  if responder_is_strongswan; then
    check "responder sees dev1 behind NAT" check_responder_view "$IKX_DEV1_ID" "$IKX_DEV1_IP"
    check "responder sees dev2 behind NAT" check_responder_view "$IKX_DEV2_ID" "$IKX_DEV2_IP"
  fi
  check_traffic dev1 "$IKX_NS_DEV1" psk-gcm "${a1%% *}" "${a1##* }"
  check_traffic dev2 "$IKX_NS_DEV2" psk-gcm "${a2%% *}" "${a2##* }"
  [ "$failed" = "$failed0" ] || show_logs dev1 dev2 gw
  stop_charon dev1; stop_charon dev2
  responder_stop
}

# Rekeys under traffic (PSK, GCM suite): a 20 ms ping stream from dev1 to
# the core host runs while strongSwan rekeys the CHILD_SA and then the
# IKE_SA; not one echo may be lost (make before break on both ends), the
# child SPIs change, the tunnel still carries traffic. Then dev1 deletes its
# IKE SA: with segw as responder, the data plane must be left with no SA.
child_spis() { swanctl dev1 --list-sas --ike psk-gcm --raw 2>/dev/null | grep -o 'spi-in=[0-9a-f]*' | sort | tr '\n' ' '; }
ike_spi_of() { swanctl dev1 --list-sas --ike psk-gcm --raw 2>/dev/null | grep -o 'initiator-spi=[0-9a-f]*' | head -1; }
ping_loss() {  # FILE: "N transmitted, M received" with zero loss
  local line; line=$(grep -E 'packets transmitted' "$1"); echo "$line"
  [[ "$line" == *" 0% packet loss"* ]]
}
# The data plane's SA count, from its inventory (segwctl-dp dump: "N SAs").
segw_sa_count() {
  local n
  n=$("$IKX_SEGW_BUILD/controlplane/tools/segwctl-dp" --channel "$IKX_PREFIX-segw" --directory "$IKX_DIR/segw" \
      dump 2>/dev/null | sed -n 's/^\([0-9][0-9]*\) SAs$/\1/p')
  echo "SAs in the data plane: ${n:-?}"
  [ "${n:-x}" = "$1" ]
}
run_rekey() {
  local failed0=$failed spis0 spis1 ike0 ike1 vip4 raw pid
  scenario=rekey
  echo "== scenario $scenario: child and IKE rekey under traffic, then delete (psk-gcm, responder $IKX_RESPONDER)"
  nat_flush_conntrack
  if ! responder_start psk; then check "responder started" false; return 0; fi
  if ! start_charon "$IKX_NS_DEV1" dev1 "$IKX_DIR/dev1"; then
    check "initiator started" false; responder_stop; return 0
  fi
  swanctl dev1 --initiate --ike psk-gcm --child psk-gcm --timeout 20 > "$IKX_DIR/initiate-rekey.out" 2>&1 || true
  check "IKE_SA + CHILD_SA established" wait_for_sa dev1 psk-gcm 10
  raw=$(sa_raw dev1 --ike psk-gcm)
  vip4=$(sa_field local-vips <<<"$raw" | tr ' ' '\n' | grep -v : || true)
  spis0=$(child_spis); ike0=$(ike_spi_of)
  ikx_ns "$IKX_NS_DEV1" ping -I "$vip4" -i 0.02 -c 400 -W 1 "$IKX_CORE_IP" > "$IKX_DIR/rekey-ping.out" 2>&1 &
  pid=$!
  sleep 2
  swanctl dev1 --rekey --child psk-gcm > "$IKX_DIR/rekey-child.out" 2>&1 || true
  sleep 2
  swanctl dev1 --rekey --ike psk-gcm > "$IKX_DIR/rekey-ike.out" 2>&1 || true
  sleep 2
  swanctl dev1 --rekey --child psk-gcm >> "$IKX_DIR/rekey-child.out" 2>&1 || true
  wait "$pid" || true
  spis1=$(child_spis); ike1=$(ike_spi_of)
  check "no echo lost across child, IKE and child rekeys" ping_loss "$IKX_DIR/rekey-ping.out"
  check "child SPIs changed" bash -c 'echo "before [$1] after [$2]"; [ -n "$2" ] && [ "$1" != "$2" ]' _ "$spis0" "$spis1"
  check "IKE SPI changed" bash -c 'echo "before [$1] after [$2]"; [ -n "$2" ] && [ "$1" != "$2" ]' _ "$ike0" "$ike1"
  check "tunnel carries traffic after the rekeys" ping_check "$IKX_NS_DEV1" "$vip4" "$IKX_CORE_IP"
  if [ "$IKX_RESPONDER" = segw ]; then
    check "segw data plane holds exactly one SA pair" segw_sa_count 2
  fi
  swanctl dev1 --terminate --ike psk-gcm --timeout 10 > "$IKX_DIR/terminate.out" 2>&1 || true
  sleep 1
  if [ "$IKX_RESPONDER" = segw ]; then
    check "segw data plane empty after the peer's DELETE" segw_sa_count 0
    check "segw logged the IKE SA deletion" grep -m1 -E "IKE SA [0-9]+ deleted .*: deleted by the peer$" "$IKX_DIR/segw/controlplane.log"
  fi
  [ "$failed" = "$failed0" ] || show_logs dev1 gw
  stop_charon dev1
  responder_stop
}

# Liveness (segw as responder): the device dies without a word (charon
# killed with SIGKILL); segw's liveness checks (after 2 s without a word,
# dpd_timeout_s 4 here) go unanswered, the IKE SA is declared dead and its SAs leave the data plane.
run_liveness() {
  local failed0=$failed
  scenario=liveness
  echo "== scenario $scenario: a silent peer is found dead and cleaned up (responder $IKX_RESPONDER)"
  nat_flush_conntrack
  if ! IKX_SEGW_DPD=2 IKX_SEGW_DPD_TIMEOUT=4 responder_start psk; then check "responder started" false; return 0; fi
  if ! start_charon "$IKX_NS_DEV1" dev1 "$IKX_DIR/dev1"; then
    check "initiator started" false; responder_stop; return 0
  fi
  swanctl dev1 --initiate --ike psk-gcm --child psk-gcm --timeout 20 > "$IKX_DIR/initiate-liveness.out" 2>&1 || true
  check "IKE_SA + CHILD_SA established" wait_for_sa dev1 psk-gcm 10
  check "segw data plane holds the SA pair" segw_sa_count 2
  kill -KILL "${IKX_CHARON_PID[dev1]}" 2>/dev/null || true
  local i
  for i in $(seq 40); do
    grep -q "peer dead" "$IKX_DIR/segw/controlplane.log" 2>/dev/null && break
    sleep 0.5
  done
  check "segw declared the peer dead" grep -m1 "peer dead" "$IKX_DIR/segw/controlplane.log"
  check "segw data plane empty" segw_sa_count 0
  [ "$failed" = "$failed0" ] || show_logs gw
  stop_charon dev1
  responder_stop
}

# segw as the initiator (our engine, through segw-ike-load, from dev1 behind
# the NAT) toward the responder: the IKE SA comes up; with segw as the
# responder, EXTERNAL_SOURCE_IP4_NAT_INFO (CP attribute 23, which neither
# strongSwan nor libreswan can ask for) must name the NAT's public address
# and the UDP port it mapped dev1's port 4500 to.
run_segw_initiator() {
  local failed0=$failed conf=$IKX_DIR/segw-initiator.conf out=$IKX_DIR/segw-initiator.json port
  scenario=segw-initiator
  echo "== scenario $scenario: segw's engine initiates from dev1 (psk, responder $IKX_RESPONDER)"
  nat_flush_conntrack
  if ! responder_start psk; then check "responder started" false; return 0; fi
  cat > "$conf" <<EOF
[controlplane]
transport = udp
listen = $IKX_DEV1_IP

[secret devices]
id = %any
psk = "$IKX_PSK"

[profile device]
remote_id = fqdn:$IKX_GW_ID
local_id = fqdn:$IKX_DEV1_ID
local_auth = psk
remote_auth = psk
ike_proposals = ${IKX_IKE_PROPOSAL[gcm]}
esp_proposals = ${IKX_ESP_PROPOSAL[gcm]}-esn-noesn
dpd_interval_s = 0
EOF
  ip netns exec "$IKX_NS_DEV1" "$IKX_SEGW_BUILD/tools/ike_load/segw-ike-load" -c "$conf" --target "$IKX_GW_ACCESS_IP" \
    --ike-port 500 --natt-port 4500 --source-base "$IKX_DEV1_IP" --sources 1 --count 1 --concurrency 1 \
    --request-nat-info --hold 1 --json -q > "$out" 2> "$IKX_DIR/segw-initiator.err" || true
  check "IKE SA established by segw's initiator" grep -o '"established": 1,' "$out"
  check "virtual IPv4 from the responder's pool" grep -oE '"first_internal_ip4": "10\.64\.0\.[0-9]+"' "$out"
  if [ "$IKX_RESPONDER" = segw ]; then
    port=$(nat_port_of "$IKX_DEV1_IP")
    check "attribute 23 names the NAT mapping ($IKX_NAT_PUBLIC_IP:$port)" \
      grep -o "\"first_nat_info\": \"$IKX_NAT_PUBLIC_IP:$port\"" "$out"
  fi
  [ "$failed" = "$failed0" ] || { cat "$out" "$IKX_DIR/segw-initiator.err"; show_logs gw; }
  responder_stop
}

# segw rekeys on its own, under traffic: the child SAs have a hard limit of
# 300 packets, the data plane raises the soft-lifetime event at 270 and
# segw-controlplane initiates the child rekey (make before break, then its
# DELETE of the old child) in the middle of a 50/s ping stream: no echo
# lost, the SPIs change, the data plane ends with one SA pair.
run_segw_rekey() {
  local failed0=$failed spis0 spis1 vip4 raw pid
  scenario=segw-rekey
  echo "== scenario $scenario: segw rekeys on the data plane's soft-lifetime event under traffic"
  nat_flush_conntrack
  if ! IKX_SEGW_CHILD_PACKETS=300 responder_start psk; then check "responder started" false; return 0; fi
  if ! start_charon "$IKX_NS_DEV1" dev1 "$IKX_DIR/dev1"; then
    check "initiator started" false; responder_stop; return 0
  fi
  swanctl dev1 --initiate --ike psk-gcm --child psk-gcm --timeout 20 > "$IKX_DIR/initiate-segw-rekey.out" 2>&1 || true
  check "IKE_SA + CHILD_SA established" wait_for_sa dev1 psk-gcm 10
  raw=$(sa_raw dev1 --ike psk-gcm)
  vip4=$(sa_field local-vips <<<"$raw" | tr ' ' '\n' | grep -v : || true)
  spis0=$(child_spis)
  ikx_ns "$IKX_NS_DEV1" ping -I "$vip4" -i 0.02 -c 400 -W 1 "$IKX_CORE_IP" > "$IKX_DIR/segw-rekey-ping.out" 2>&1 &
  pid=$!
  wait "$pid" || true
  sleep 1
  spis1=$(child_spis)
  check "no echo lost across segw's rekey" ping_loss "$IKX_DIR/segw-rekey-ping.out"
  check "segw rekeyed the child itself" grep -m1 -E "child_installed .*: child rekeyed" "$IKX_DIR/segw/controlplane.log"
  check "child SPIs changed" bash -c 'echo "before [$1] after [$2]"; [ -n "$2" ] && [ "$1" != "$2" ]' _ "$spis0" "$spis1"
  check "segw data plane holds exactly one SA pair" segw_sa_count 2
  check "tunnel carries traffic after the rekey" ping_check "$IKX_NS_DEV1" "$vip4" "$IKX_CORE_IP"
  [ "$failed" = "$failed0" ] || show_logs dev1 gw
  stop_charon dev1
  responder_stop
}

ikx_trap
topo_create
certs_generate
ikx_device_confdir dev1 "$IKX_DEV1_ID" "$IKX_DIR/dev1"
[ "$IKX_WITH_DEV2" = 1 ] && ikx_device_confdir dev2 "$IKX_DEV2_ID" "$IKX_DIR/dev2"

for sc in $scenarios; do run_scenario "$sc"; done
[ "$IKX_WITH_DEV2" = 1 ] && run_two_devices
[ "${IKX_WITH_REKEY:-1}" = 1 ] && run_rekey
[ "${IKX_WITH_SEGW_INITIATOR:-1}" = 1 ] && run_segw_initiator
[ "$IKX_RESPONDER" = segw ] && [ "${IKX_WITH_LIVENESS:-1}" = 1 ] && run_liveness
[ "$IKX_RESPONDER" = segw ] && [ "${IKX_WITH_SEGW_REKEY:-1}" = 1 ] && run_segw_rekey

echo "== $passed checks passed, $failed failed (responder $IKX_RESPONDER, run dir $IKX_DIR)"
if [ "$failed" != 0 ]; then
  printf '   failed: %s\n' "${failed_names[@]}"
  IKX_KEEP=1   # keep logs and configs for the post-mortem
  exit 1
fi
exit 0
