# A device fleet behind a kernel NAT in front of segw (data plane + control
# plane), for bench/remap_mass and tests/integration/remap/run_fleet.sh.
# Sourced (bash, root). Everything carries the caller's FLEET_PREFIX
# (namespaces, channel name) or lies under FLEET_DIR; fleet_cleanup undoes it
# and kills only the processes started here, by PID.
#
#   fleet ──────────── nat ─────────────────────── gw (segw-dataplane on af_packet
#   100.64.0.0/15      SNAT to 198.51.100.2-.9     198.51.100.1 + segw-controlplane)
#   100.66.0.0/15      (fleet_snat PORTS)
#   203.0.113.0/24     routed untranslated ("public": no NAT)
#
# Every address of the three fleet ranges is the fleet's own (local routes on
# its lo): segw-ike-load sends from each with IP_PKTINFO.
#
# Knobs: FLEET_PREFIX, FLEET_DIR (both required), SEGW_BUILD_DIR (default
# build/), FLEET_TUNNELS (sizes the data plane; default 1024).

FLEET_BUILD=${SEGW_BUILD_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/build}
FLEET_NS_FLEET=$FLEET_PREFIX-fleet
FLEET_NS_NAT=$FLEET_PREFIX-nat
FLEET_NS_GW=$FLEET_PREFIX-gw
FLEET_PIDS=()
FLEET_CP_PID=
FLEET_PSK=segw-fleet-psk-0123456789

fleet_log() { printf '[fleet] %s\n' "$*" >&2; }

fleet_cleanup() {
  local pid ns
  for pid in "${FLEET_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${FLEET_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  FLEET_PIDS=()
  for ns in "$FLEET_NS_FLEET" "$FLEET_NS_NAT" "$FLEET_NS_GW"; do ip netns del "$ns" 2>/dev/null || true; done
}

# fleet_snat PORTS: the NAT's mappings use PORTS from now on (one
# iptables-restore transaction, so the chain is never seen empty), then
# conntrack -F: every mapping changes at once.
fleet_snat() {
  {
    echo "*nat"
    echo "-F POSTROUTING"
    echo "-A POSTROUTING -s 203.0.113.0/24 -j ACCEPT"
    echo "-A POSTROUTING -o wan -p udp -j SNAT --to-source 198.51.100.2-198.51.100.9:$1"
    echo "COMMIT"
  } | ip netns exec "$FLEET_NS_NAT" iptables-restore --noflush
  ip netns exec "$FLEET_NS_NAT" conntrack -F >/dev/null 2>&1 || true
}

fleet_topology_create() {
  local ns gw_mac
  for ns in "$FLEET_NS_FLEET" "$FLEET_NS_NAT" "$FLEET_NS_GW"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip link add wan0 netns "$FLEET_NS_FLEET" type veth peer name lan netns "$FLEET_NS_NAT"
  ip link add wan netns "$FLEET_NS_NAT" type veth peer name acc netns "$FLEET_NS_GW"
  ip -n "$FLEET_NS_FLEET" addr add 10.200.0.2/24 dev wan0
  ip -n "$FLEET_NS_FLEET" link set wan0 up
  ip -n "$FLEET_NS_FLEET" route add default via 10.200.0.1
  ip -n "$FLEET_NS_FLEET" route add local 100.64.0.0/15 dev lo
  ip -n "$FLEET_NS_FLEET" route add local 100.66.0.0/15 dev lo
  ip -n "$FLEET_NS_FLEET" route add local 203.0.113.0/24 dev lo
  ip -n "$FLEET_NS_NAT" addr add 10.200.0.1/24 dev lan
  ip -n "$FLEET_NS_NAT" addr add 198.51.100.2/24 dev wan
  ip -n "$FLEET_NS_NAT" link set lan up
  ip -n "$FLEET_NS_NAT" link set wan up
  for ns in 100.64.0.0/15 100.66.0.0/15 203.0.113.0/24; do
    ip -n "$FLEET_NS_NAT" route add "$ns" via 10.200.0.2
  done
  ip netns exec "$FLEET_NS_NAT" sysctl -qw net.ipv4.ip_forward=1
  # Room for every mapping (the table is shared by all namespaces).
  local wanted=$(( ${FLEET_TUNNELS:-1024} * 4 + 65536 )) current
  current=$(sysctl -n net.netfilter.nf_conntrack_max 2>/dev/null || echo 0)
  [ "$current" -ge "$wanted" ] || sysctl -qw net.netfilter.nf_conntrack_max=$wanted 2>/dev/null || true
  fleet_snat 10000-34999
  ip -n "$FLEET_NS_GW" link set acc up
  gw_mac=$(ip -n "$FLEET_NS_GW" -o link show acc | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  # segw-dataplane answers no ARP: the NAT learns the gateway's MAC statically.
  ip -n "$FLEET_NS_NAT" neigh replace 198.51.100.1 lladdr "$gw_mac" dev wan nud permanent
}

# fleet_start_gateway PROFILE_EXTRA: segw-dataplane on the gw's veth and
# segw-controlplane attached to it; PROFILE_EXTRA: more lines of its
# [profile fleet] (remap = ..., ...).
fleet_start_gateway() {
  local extra=$1 tunnels=${FLEET_TUNNELS:-1024} capacity=1024 index_bits=0 nat_mac
  while [ "$capacity" -lt $(( tunnels * 2 + 1024 )) ]; do capacity=$(( capacity * 2 )); done
  while [ $(( 1 << index_bits )) -lt "$capacity" ]; do index_bits=$(( index_bits + 1 )); done
  nat_mac=$(ip -n "$FLEET_NS_NAT" -o link show wan | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  cat > "$FLEET_DIR/dataplane.conf" <<EOF
# A whole fleet's IKE at once (every device's next message after a NAT
# reboot): IKE queues and the af_packet ring sized for bursts of thousands.
[dataplane]
sa_capacity = $capacity
max_routes = $(( tunnels + 1024 ))
ipv4_route_groups = $(( tunnels / 256 + 1024 ))
mbufs = 65536
punt_ring_size = 16384

[channel]
name = $FLEET_PREFIX
directory = $FLEET_DIR
inventory_capacity = $capacity
counters_refresh_ms = 1000
punt_ring = 16384
inject_ring = 16384

[port access]
device = net_af_packet0,iface=acc,qpairs=1,framecnt=16384
next_hop_mac = $nat_mac
address = 198.51.100.1

[port core]
device = net_null0,no-rx=1
next_hop_mac = 02:00:00:00:00:02
address = 10.0.0.1
EOF
  cat > "$FLEET_DIR/controlplane.conf" <<EOF
[controlplane]
transport = dataplane
channel = $FLEET_PREFIX
channel_directory = $FLEET_DIR
dataplane_sa_index_bits = $index_bits
max_ike_sas = $(( tunnels * 2 + 1024 ))
${FLEET_DAEMON_EXTRA:-}

[pool fleet]
range = 10.64.0.0/12

[secret fleet]
id = %any
psk = $FLEET_PSK

[profile fleet]
remote_id = %any
local_id = fqdn:segw.example
local_auth = psk
remote_auth = psk
ike_proposals = aes256gcm16-prfsha256-ecp256
esp_proposals = aes256gcm16-noesn
pools = fleet
local_subnets = 10.0.0.0/16
dpd_interval_s = 0
$extra
EOF
  ip netns exec "$FLEET_NS_GW" "$FLEET_BUILD/dataplane/segw-dataplane" -c "$FLEET_DIR/dataplane.conf" -- -l 0,1 \
    --no-huge -m "${FLEET_DATAPLANE_MB:-1024}" --file-prefix "$FLEET_PREFIX-dp" --no-telemetry --log-level=error \
    > "$FLEET_DIR/dataplane.log" 2>&1 &
  FLEET_PIDS+=($!)
  if ! "$FLEET_BUILD/controlplane/tools/segwctl-dp" --channel "$FLEET_PREFIX" --directory "$FLEET_DIR" \
      wait-ready --wait 60000 >/dev/null; then
    tail -20 "$FLEET_DIR/dataplane.log" >&2
    return 1
  fi
  # The control plane runs in the gw namespace too (its API on the gw's lo).
  ip netns exec "$FLEET_NS_GW" "$FLEET_BUILD/controlplane/daemon/segw-controlplane" -c "$FLEET_DIR/controlplane.conf" \
    > "$FLEET_DIR/controlplane.log" 2>&1 &
  FLEET_CP_PID=$!
  FLEET_PIDS+=($FLEET_CP_PID)
  local i
  for i in $(seq 100); do
    grep -q running "$FLEET_DIR/controlplane.log" 2>/dev/null && return 0
    kill -0 "$FLEET_CP_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$FLEET_DIR/controlplane.log" >&2
  return 1
}

# fleet_config MOBIKE(yes|no): the initiators' configuration file.
fleet_config() {
  cat > "$FLEET_DIR/fleet.conf" <<EOF
[controlplane]
transport = udp
listen = 0.0.0.0
retransmit_timeout_ms = 2000
retransmit_tries = 4
half_open_timeout_s = 60

[secret fleet]
id = %any
psk = $FLEET_PSK

[profile fleet]
remote_id = fqdn:segw.example
local_id = fqdn:fleet.fap.example
local_auth = psk
remote_auth = psk
ike_proposals = aes256gcm16-prfsha256-ecp256
esp_proposals = aes256gcm16-noesn
dpd_interval_s = 0
mobike = $1
EOF
}

# fleet_start NAME ARGS...: segw-ike-load in the fleet namespace (its JSON
# summary in FLEET_DIR/NAME.json, stderr in NAME.log); sets FLEET_LOAD_PID.
fleet_start() {
  local name=$1; shift
  ip netns exec "$FLEET_NS_FLEET" "$FLEET_BUILD/tools/ike_load/segw-ike-load" -c "$FLEET_DIR/fleet.conf" \
    --target 198.51.100.1 --json "$@" > "$FLEET_DIR/$name.json" 2> "$FLEET_DIR/$name.log" &
  FLEET_LOAD_PID=$!
  FLEET_PIDS+=($FLEET_LOAD_PID)
}

# fleet_wait_summary NAME TIMEOUT_S: until NAME's JSON summary is written;
# prints its "established" count.
fleet_wait_summary() {
  local name=$1 i
  for i in $(seq $(( $2 * 10 ))); do
    [ -s "$FLEET_DIR/$name.json" ] && break
    sleep 0.1
  done
  sed -n 's/.*"established": *\([0-9]*\).*/\1/p' "$FLEET_DIR/$name.json"
}

# The data plane's SA inventory, one outbound SA per line: "REMOTE_ADDRESS
# REMOTE_PORT udp|esp TUNNEL".
# A dump that fails (the data plane too busy to show its heartbeat within
# segwctl-dp's timeout) prints nothing: callers poll again.
fleet_outbound_paths() {
  { "$FLEET_BUILD/controlplane/tools/segwctl-dp" --channel "$FLEET_PREFIX" --directory "$FLEET_DIR" --timeout 20000 \
      dump 2>/dev/null || true; } |
    awk '
      # spi 0x.. outbound tunnel N ALGORITHM path LOCAL:PORT -> REMOTE:PORT udp|esp ...
      $1 == "spi" && $3 == "outbound" && $9 == "->" {
        n = split($10, parts, ":"); print parts[1], parts[n], $11, $5
      }'
}

# Outbound SAs whose remote port lies in [LOW, HIGH].
fleet_outbound_in_range() {
  fleet_outbound_paths | awk -v low="$1" -v high="$2" '$2 >= low && $2 <= high { n++ } END { print n + 0 }'
}
