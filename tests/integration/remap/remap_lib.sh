# Shared by run_remap.sh (the test) and bench/remap_interruption.sh (the
# benchmark): processes this run starts, evidence (conntrack, segw's log and
# data plane, the stream, captures), checks, and a tunnel with a stream.
# Source after tests/integration/ike_interop/lib.sh; needs `here` = this folder.

STREAM=(/usr/bin/python3 "$here/stream.py")
GW_NATT=$IKX_GW_ACCESS_IP:4500
passed=${passed:-0}
failed=${failed:-0}
failed_names=()
scenario=

# ---------------------------------------------------------------- reporting

check() {  # DESCRIPTION CMD...: ok/FAIL with CMD's stdout as evidence
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
expect_eq() { echo "$1=$2"; [ "$2" = "$3" ] || { echo "(expected $3)"; return 1; }; }
json() { /usr/bin/python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print("" if v is None else v)' "$1" "$2"; }
# float comparisons: lt A B
lt() { /usr/bin/python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)' "$1" "$2" 2>/dev/null; }
now() { date +%s%N; }

# ---------------------------------------------------------------- processes we start

declare -A BG_PID=()
bg_start() {  # NAME NS CMD...: one process in NS, its own PID recorded
  local name=$1 ns=$2; shift 2
  ip netns exec "$ns" "$@" &
  BG_PID[$name]=$!
}
bg_stop() {  # NAME: SIGTERM, SIGKILL after 3 s; that PID only
  local pid=${BG_PID[$1]:-} i
  [ -z "$pid" ] && return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "BG_PID[$1]"
}
pid_stop() {  # PIDFILE: a process started through a pipeline wrote its PID here
  local pid i
  [ -s "$1" ] || return 0
  pid=$(cat "$1")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
}
remap_cleanup() {
  local name
  for name in "${!BG_PID[@]}"; do bg_stop "$name"; done
  [ -n "${RUN:-}" ] && { pid_stop "$RUN/sniff.pid"; pid_stop "$RUN/resend.pid"; }
  [ -n "${relay_pipeline:-}" ] && wait "$relay_pipeline" 2>/dev/null
  return 0
}

# tcpdump in NS on IF into FILE (filter FILTER...); waits until it listens.
capture_start() {  # NAME NS IF FILE FILTER...
  local name=$1 ns=$2 ifc=$3 file=$4 i; shift 4
  ip netns exec "$ns" tcpdump -i "$ifc" -n -s 128 -U -w "$file" "$@" 2> "$file.log" &
  BG_PID[$name]=$!
  for i in $(seq 50); do grep -q "listening on" "$file.log" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# ---------------------------------------------------------------- evidence

# The NAT's mapping of dev1:4500 as conntrack shows it: PUBLIC_IP:PORT.
nat_mapping() {
  nat_show_conntrack | awk -v ip="$IKX_DEV1_IP" '
    $0 ~ "src=" ip " " && / sport=4500 / {
      nd = 0; np = 0; d = ""; p = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^dst=/) { nd++; if (nd == 2) { d = $i; sub("dst=", "", d) } }
        if ($i ~ /^dport=/) { np++; if (np == 2) { p = $i; sub("dport=", "", p) } }
      }
      if (d != "" && p != "") { print d ":" p; exit }
    }'
}
segw_dump() {
  "$IKX_SEGW_BUILD/controlplane/tools/segwctl-dp" --channel "$IKX_PREFIX-segw" --directory "$IKX_DIR/segw" \
    dump 2>/dev/null
}
# The remote endpoint of the data plane's outbound SA (where downlink goes).
segw_out_remote() { segw_dump | sed -n 's/^spi 0x[0-9a-f]* outbound .* path [^ ]* -> \([^ ]*\) .*/\1/p' | head -1; }
segw_in_field() {  # FIELD: a counter of the inbound SA (drops, new_source_packets, path_generation)
  segw_dump | awk -v f="$1" '$3 == "inbound" { for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'
}
segw_path_generation() { segw_dump | awk '$3 == "outbound" { for (i = 1; i < NF; i++) if ($i == "path_generation") { print $(i + 1); exit } }'; }
cp_log() { cat "$IKX_DIR/segw/controlplane.log" 2>/dev/null; }
moved_count() { cp_log | grep -c -E "IKE SA [0-9]+ moved " || true; }
established_count() { cp_log | grep -c -E "IKE SA [0-9]+ established " || true; }
last_moved() { cp_log | grep -E "IKE SA [0-9]+ moved " | tail -1; }
wait_moved() {  # N0 TIMEOUT_S: until more than N0 moved lines (0) or timeout (1)
  local n0=$1 deadline=$(( $(date +%s%N) + $2 * 1000000000 ))
  while [ "$(date +%s%N)" -lt "$deadline" ]; do
    [ "$(moved_count)" -gt "$n0" ] && return 0
    sleep 0.02
  done
  return 1
}
# The device's view of its SAs: IKE SPIs, child SPIs, the gateway endpoint.
device_sas() {
  local raw
  raw=$(sa_raw dev1 --ike psk-gcm)
  printf 'ike %s/%s child %s/%s gw %s[%s]' "$(sa_field initiator-spi <<<"$raw")" "$(sa_field responder-spi <<<"$raw")" \
    "$(sa_field spi-in <<<"${raw#*child-sas}")" "$(sa_field spi-out <<<"${raw#*child-sas}")" \
    "$(sa_field remote-host <<<"$raw")" "$(sa_field remote-port <<<"$raw")"
}

# Downlink (core -> device) and uplink (device -> core) receptions in a window.
down_gap() { "${STREAM[@]}" gap "$RUN/dev.log" --since "$1" --until "${2:-0}"; }
up_gap() { "${STREAM[@]}" gap "$RUN/core.log" --since "$1" --until "${2:-0}"; }
# wan_sync [T]: until the wan capture holds everything up to T (default now).
wan_sync() { "${STREAM[@]}" sync "$RUN/wan.pcap" --until "${1:-$(now)}" || true; }
# IKE INFORMATIONAL requests the gateway sent to DST (IP or IP:PORT) in [SINCE, UNTIL] of PCAP.
gw_requests() { "${STREAM[@]}" ike-count "$1" --src "$GW_NATT" --dst "$2" --since "$3" --until "${4:-0}"; }

# ---------------------------------------------------------------- checks

check_moved_line() {  # HOW FROM TO: the last moved line names HOW: FROM -> TO
  local line; line=$(last_moved)
  echo "${line:-no moved line}"
  [[ $line == *"$1: $2 -> $3" ]] && [[ $line == *" at $3 "* ]]
}
check_no_new_moved() {  # N0
  local n; n=$(moved_count)
  echo "moved lines $1 -> $n${n:+$( [ "$n" != "$1" ] && echo ": $(last_moved)")}"
  [ "$n" = "$1" ]
}
check_gw_path() {  # EXPECTED: the data plane's outbound SA sends to it
  local r; r=$(segw_out_remote)
  echo "data plane outbound path -> ${r:-?} (path_generation $(segw_path_generation))"
  [ "$r" = "$1" ]
}
check_mapping_changed() {  # OLD RANGE: a new mapping, inside RANGE (LO-HI) when given
  local m; m=$(nat_mapping)
  echo "conntrack: $IKX_DEV1_IP:4500 -> ${m:-none} (was $1, SNAT range ${2:-any})"
  [ -n "$m" ] && [ "$m" != "$1" ] || return 1
  [ -z "$2" ] && return 0
  local port=${m##*:}; [ "$port" -ge "${2%-*}" ] && [ "$port" -le "${2#*-}" ]
}
check_device_sas_same() {  # BEFORE
  local after; after=$(device_sas)
  echo "before [$1] after [$after]"
  [ "$1" = "$after" ] && [[ $after != *"ike /"* ]]
}
check_no_ike_rerun() {  # SINCE EST0
  local j n e
  j=$("${STREAM[@]}" ike-init "$RUN/wan.pcap" --since "$1"); n=$(json "$j" ike_sa_init)
  e=$(established_count)
  echo "IKE_SA_INIT on the wire since the change: $n; gateway 'established' lines $2 -> $e"
  [ "$n" = 0 ] && [ "$e" = "$2" ]
}
check_checks() {  # PCAP DST SINCE UNTIL MIN MAX: distinct INFORMATIONAL requests to DST
  local j d r
  j=$(gw_requests "$1" "$2" "$3" "$4"); d=$(json "$j" distinct_message_ids); r=$(json "$j" informational_requests)
  echo "INFORMATIONAL requests gw -> $2: $r datagrams, $d distinct message IDs ($(json "$j" message_ids))"
  [ "$d" -ge "$5" ] && [ "$d" -le "$6" ]
}
check_downlink_flows() {  # SINCE UNTIL MAX_GAP_MS: downlink received, longest silence below MAX
  local j; j=$(down_gap "$1" "$2")
  echo "downlink: received $(json "$j" received), lost $(json "$j" lost), longest gap $(json "$j" longest_gap_ms) ms"
  [ "$(json "$j" received)" -gt 0 ] && lt "$(json "$j" longest_gap_ms)" "$3"
}
# wait_downlink SINCE N TIMEOUT_S: until the device has received N downlink
# packets after SINCE (0) or TIMEOUT_S passed (1); prints how many, how fast.
# Polling, not a fixed window: on a loaded 2-core runner the device's
# libipsec and the stream itself may be starved for a few hundred ms.
wait_downlink() {
  local since=$1 n=$2 deadline=$(( $(date +%s%N) + $3 * 1000000000 )) j got
  while :; do
    j=$(down_gap "$since"); got=$(json "$j" received)
    if [ "${got:-0}" -ge "$n" ]; then
      echo "downlink: $got packets received since then, the first after $(json "$j" first_received_after_since_ms) ms"
      return 0
    fi
    [ "$(date +%s%N)" -lt "$deadline" ] || break
    sleep 0.2
  done
  echo "downlink: only ${got:-0} packets received in $3 s"
  return 1
}
check_downlink_dead() {  # SINCE UNTIL: nothing received in the window
  local j; j=$(down_gap "$1" "$2")
  echo "downlink received in the $(( ($2 - $1) / 1000000 )) ms window: $(json "$j" received)"
  [ "$(json "$j" received)" = 0 ]
}
check_uplink_flows() {  # SINCE UNTIL
  local j; j=$(up_gap "$1" "$2")
  echo "uplink at core: received $(json "$j" received), longest gap $(json "$j" longest_gap_ms) ms"
  [ "$(json "$j" received)" -gt 0 ]
}
check_wire_interruption() {  # SINCE PUBLIC MAX_MS: first uplink on the new mapping -> first downlink there
  local j ms; j=$("${STREAM[@]}" wire "$RUN/wan.pcap" --public "$2" --gw "$GW_NATT" --since "$1")
  ms=$(json "$j" interruption_ms)
  echo "on the NAT's wan: first uplink ESP from $2 -> first downlink ESP to it: ${ms:-never} ms"
  [ -n "$ms" ] && lt "$ms" "$3"
}

# ---------------------------------------------------------------- a tunnel with a stream

vip4=
# tunnel_up POLICY [NAME]: the responder (segw with remap = POLICY; or strongSwan
# when IKX_RESPONDER=strongswan, POLICY then only names the run directory),
# dev1's IKE SA psk-gcm, the stream both ways, the capture on the NAT's wan.
# Returns non-zero when something did not come up.
tunnel_up() {
  local policy=$1 raw i
  RUN=$IKX_DIR/remap/${2:-$policy}; mkdir -p "$RUN"
  nat_set_ports_atomic 40000-40999
  if [ "$IKX_RESPONDER" = segw ]; then
    if ! IKX_SEGW_REMAP=$policy responder_start psk; then check "segw started (remap = $policy)" false; return 1; fi
    check "segw profile says remap = $policy" grep -x "remap = $policy" "$IKX_DIR/responder/segw-psk.conf"
  else
    if ! responder_start psk; then check "$IKX_RESPONDER responder started" false; return 1; fi
  fi
  if ! start_charon "$IKX_NS_DEV1" dev1 "$IKX_DIR/dev1"; then check "dev1 charon started" false; return 1; fi
  capture_start wan "$IKX_NS_NAT" wan "$RUN/wan.pcap" udp port 4500 or udp port 500 ||
    { check "capture on the NAT's wan" false; return 1; }
  # Twice at most: on a starved runner charon's 3 retransmissions (1 s
  # apart) of IKE_SA_INIT can all go before the answer comes.
  for i in 1 2; do
    swanctl dev1 --initiate --ike psk-gcm --child psk-gcm --timeout 20 > "$RUN/initiate.$i.out" 2>&1 || true
    wait_for_sa dev1 psk-gcm 10 && break
  done
  if ! wait_for_sa dev1 psk-gcm 1; then check "IKE_SA + CHILD_SA established" false; return 1; fi
  raw=$(sa_raw dev1 --ike psk-gcm)
  vip4=$(sa_field local-vips <<<"$raw" | tr ' ' '\n' | grep -v : || true)
  check "tunnel up, no MOBIKE, virtual IP" bash -c 'echo "vip $1, $2"; [[ $1 == 10.64.0.* ]]' _ "$vip4" "$(device_sas)"
  bg_start stream_core "$IKX_NS_CORE" "${STREAM[@]}" run --bind "$IKX_CORE_IP" --peer "$vip4" --log "$RUN/core.log"
  bg_start stream_dev "$IKX_NS_DEV1" "${STREAM[@]}" run --bind "$vip4" --peer "$IKX_CORE_IP" --log "$RUN/dev.log"
  local t d u
  t=$(now)
  for i in $(seq 50); do
    sleep 0.2
    d=$(down_gap "$t" | sed -n 's/.*"received": \([0-9]*\).*/\1/p'); u=$(up_gap "$t" | sed -n 's/.*"received": \([0-9]*\).*/\1/p')
    [ "${d:-0}" -ge 200 ] && [ "${u:-0}" -ge 200 ] && break
  done
  check "stream flows both ways" bash -c 'echo "received since the start: downlink $1, uplink $2"; [ "${1:-0}" -ge 200 ] && [ "${2:-0}" -ge 200 ]' _ "$d" "$u"
}
tunnel_down() {
  bg_stop stream_dev; bg_stop stream_core; bg_stop wan
  stop_charon dev1
  responder_stop
}

