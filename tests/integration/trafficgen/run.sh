#!/usr/bin/env bash
# segw-trafficgen against a real segw-dataplane: the generator's two ports
# are cabled (veth pairs) to the gateway's access and core ports, in network
# namespaces this script creates and removes:
#
#   [tgen-gen-PID]                     [tgen-gw-PID]                      [tgen-gen-PID]
#   segw-trafficgen tx  ta1 <-> ta0  segw-dataplane  tc0 <-> tc1  segw-trafficgen rx
#   (segw-pcapgen uplink ESP)        (net_af_packet, static SAs)       (decapsulated IP)
#
# Checks: bad input (missing pcap, bad rate, bad MAC) exits 2 before EAL
# starts; the generator sends uplink ESP at a paced rate; the data plane
# decapsulates it (--stats-json: decapsulated, no drops, every mbuf back);
# at least 90 % of what was sent comes out of the core port and is counted by
# the generator's RX port; the JSON has exactly the documented keys; SIGTERM
# stops a run cleanly with the JSON. Nothing is skipped: a missing tool is a
# failure with its name.
#
# Usage: run.sh BUILD_DIR    (root: namespaces, af_packet sockets)
set -uo pipefail

build=${1:?usage: run.sh BUILD_DIR}
dataplane=$build/dataplane/segw-dataplane
pcapgen=$build/tools/segw-pcapgen
trafficgen=$build/tools/trafficgen/segw-trafficgen
python=/usr/bin/python3

fail() { echo "trafficgen test: FAIL: $*" >&2; exit 1; }
note() { echo "trafficgen test: $*"; }

[ "$(id -u)" = 0 ] || fail "must run as root (network namespaces, af_packet sockets)"
for tool in "$dataplane" "$pcapgen" "$trafficgen" "$python"; do
  [ -x "$tool" ] || fail "$tool is missing or not executable"
done
command -v ip >/dev/null || fail "ip (iproute2) is missing"

# Names unique to this run: namespaces, veths (<= 15 characters), EAL prefixes.
id=$$
gw=tgen-gw-$id; gen=tgen-gen-$id
ta0=ta0-$id; ta1=ta1-$id; tc0=tc0-$id; tc1=tc1-$id
work=$(mktemp -d /tmp/segw-tgen-test.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  ip netns del "$gw" 2>/dev/null
  ip netns del "$gen" 2>/dev/null
  # EAL's runtime directories of this run's processes (prefixes unique to it).
  rm -rf "/var/run/dpdk/tgen-pcapgen-$id" "/var/run/dpdk/tgen-dp-$id" "/var/run/dpdk/tgen-gen-$id"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- bad input: exit 2, a message, no EAL --------------------------------
expect_usage() {
  local what=$1; shift
  "$trafficgen" "$@" >"$work/usage.out" 2>"$work/usage.err"
  local rc=$?
  [ $rc = 2 ] || fail "$what: exit code $rc, expected 2 ($(cat "$work/usage.err"))"
  [ -s "$work/usage.err" ] || fail "$what: exit 2 without a message"
  note "$what -> exit 2: $(head -1 "$work/usage.err")"
}
expect_usage "missing pcap" --pcap "$work/no-such.pcap" --tx-port net_null0
: > "$work/empty.pcap"
expect_usage "empty file" --pcap "$work/empty.pcap" --tx-port net_null0
"$python" -c 'import struct,sys; open(sys.argv[1],"wb").write(struct.pack("<IHHiIII",0xa1b2c3d4,2,4,0,0,65535,1))' \
  "$work/header-only.pcap"
expect_usage "pcap without packets" --pcap "$work/header-only.pcap" --tx-port net_null0
expect_usage "bad rate" --pcap "$work/header-only.pcap" --tx-port net_null0 --pps fast
expect_usage "negative rate" --pcap "$work/header-only.pcap" --tx-port net_null0 --pps -1
expect_usage "bad MAC" --pcap "$work/header-only.pcap" --tx-port net_null0 --dst-mac 02:00:00:00:01
expect_usage "no tx port" --pcap "$work/header-only.pcap"

# --- namespaces and veths (documentation/private ranges only) ------------
ip netns add "$gw" || fail "ip netns add $gw"
ip netns add "$gen" || fail "ip netns add $gen"
ip link add "$ta0" netns "$gw" type veth peer name "$ta1" netns "$gen" || fail "veth $ta0/$ta1"
ip link add "$tc0" netns "$gw" type veth peer name "$tc1" netns "$gen" || fail "veth $tc0/$tc1"
for ns in "$gw" "$gen"; do
  # No IPv6 (router solicitations, DAD) and no addresses on the generator's
  # side: the kernel sends nothing the generator's RX port would count.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
for dev in "$ta0" "$tc0"; do ip -n "$gw" link set "$dev" up || fail "link up $dev"; done
for dev in "$ta1" "$tc1"; do ip -n "$gen" link set "$dev" up || fail "link up $dev"; done
mac() { ip -n "$1" -j link show "$2" | "$python" -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])'; }
ta0_mac=$(mac "$gw" "$ta0"); ta1_mac=$(mac "$gen" "$ta1"); tc1_mac=$(mac "$gen" "$tc1")

config=$work/gw.conf
cat > "$config" <<CONF
[dataplane]
stats_interval = 0
sa_capacity = 1024

[port access]
device = net_af_packet0,iface=$ta0,qpairs=1
next_hop_mac = $ta1_mac
address = 192.0.2.1

[port core]
device = net_af_packet1,iface=$tc0,qpairs=1
next_hop_mac = $tc1_mac
address = 10.0.0.1

# Four peers behind NATs: public 198.51.100.10.., inner 172.16.0.1..
[sa peer-in]
direction = inbound
count = 4
spi = 0x00001000
algorithm = aes-gcm-128
encryption_key = 000102030405060708090a0b0c0d0e0f
salt = 0a0b0c0d
local_address = 192.0.2.1
remote_address = 198.51.100.10
remote_address_step = 1
remote_port = 31000
remote_port_step = 1
local_selector = 10.0.0.0/24
remote_selector = 172.16.0.1/32
tunnel = peer

[sa peer-out]
direction = outbound
count = 4
spi = 0x00002000
algorithm = aes-gcm-128
encryption_key = 101112131415161718191a1b1c1d1e1f
salt = 1a1b1c1d
local_address = 192.0.2.1
remote_address = 198.51.100.10
remote_address_step = 1
remote_port = 31000
remote_port_step = 1
local_selector = 10.0.0.0/24
remote_selector = 172.16.0.1/32
tunnel = peer
CONF
"$dataplane" -c "$config" --check-config >"$work/check.log" 2>&1 || fail "configuration refused: $(cat "$work/check.log")"

# Uplink ESP, one frame per packet sent: each SA's sequence numbers are
# sent once (anti-replay stays on). The file's Ethernet destination is a
# placeholder that segw-trafficgen --dst-mac rewrites to the access port's.
packets=20000
pps=10000
"$pcapgen" --config "$config" --direction inbound --size 512 --packets $packets \
  --dst-mac 02:00:00:00:00:01 --output "$work/uplink.pcap" \
  -- --no-huge -m 512 --no-shconf -l 0 --file-prefix "tgen-pcapgen-$id" --log-level=error \
  >"$work/pcapgen.log" 2>&1 || fail "segw-pcapgen: $(cat "$work/pcapgen.log")"

# --- the gateway ---------------------------------------------------------
ip netns exec "$gw" "$dataplane" -c "$config" --stats-json "$work/stats.json" \
  -- -l 0,1 --no-huge -m 512 --file-prefix "tgen-dp-$id" --log-level=error >"$work/dataplane.log" 2>&1 &
dp_pid=$!
pids+=($dp_pid)
for _ in $(seq 1 300); do
  grep -q 'worker(s)' "$work/dataplane.log" && break
  kill -0 $dp_pid 2>/dev/null || fail "segw-dataplane exited at start: $(cat "$work/dataplane.log")"
  sleep 0.1
done
grep -q 'worker(s)' "$work/dataplane.log" || fail "segw-dataplane not ready after 30 s: $(cat "$work/dataplane.log")"

# --- the generator: uplink into the access port, RX on the core port -----
eal_gen=(-l 0 --no-huge -m 512 --file-prefix "tgen-gen-$id" --log-level=error)
ip netns exec "$gen" timeout 120 "$trafficgen" --pcap "$work/uplink.pcap" --dst-mac "$ta0_mac" \
  --tx-port "net_af_packet0,iface=$ta1" --rx-port "net_af_packet1,iface=$tc1" \
  --pps $pps --count $packets --drain-ms 1000 -- "${eal_gen[@]}" >"$work/tgen.json" 2>"$work/tgen.err"
rc=$?
cat "$work/tgen.err" >&2
[ $rc = 0 ] || fail "segw-trafficgen exited with $rc"
note "segw-trafficgen: $(cat "$work/tgen.json")"

# Stop the data plane; its final counters go to stats.json.
kill -TERM $dp_pid
wait $dp_pid
dp_rc=$?
pids=()
[ $dp_rc = 0 ] || fail "segw-dataplane exited with $dp_rc: $(tail -5 "$work/dataplane.log")"
[ -s "$work/stats.json" ] || fail "segw-dataplane wrote no --stats-json"

"$python" - "$work/tgen.json" "$work/stats.json" $packets <<'PY' || fail "results (above)"
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
if len(lines) != 1:
    sys.exit("segw-trafficgen printed %d lines on stdout, expected one JSON object" % len(lines))
tgen = json.loads(lines[0])
stats = json.load(open(sys.argv[2]))
packets = int(sys.argv[3])
keys = {"tx_packets", "tx_bytes", "tx_mpps", "rx_packets", "rx_bytes", "rx_mpps", "seconds", "tx_dropped"}
problems = []
if set(tgen) != keys:
    problems.append("JSON keys %s, expected %s" % (sorted(tgen), sorted(keys)))
tx, rx = tgen.get("tx_packets", 0), tgen.get("rx_packets", 0)
if tx <= 0:
    problems.append("tx_packets = %d, expected > 0" % tx)
if tx + tgen.get("tx_dropped", 0) != packets:
    problems.append("tx_packets + tx_dropped = %d, expected --count %d" % (tx + tgen.get("tx_dropped", 0), packets))
if tx and tgen["tx_bytes"] < tx * 60:
    problems.append("tx_bytes %d too small for %d ESP frames" % (tgen["tx_bytes"], tx))
decap = stats["decapsulated"]
if decap < 0.9 * tx:
    problems.append("segw decapsulated %d of %d sent (< 90 %%)" % (decap, tx))
if decap > tx:
    problems.append("segw decapsulated %d, more than the %d sent" % (decap, tx))
if rx < 0.9 * tx:
    problems.append("core side received %d of %d sent (< 90 %%)" % (rx, tx))
if rx > decap:
    problems.append("core side received %d, more than segw decapsulated (%d): foreign packets" % (rx, decap))
if rx and tgen["rx_bytes"] != rx * (512 + 14):
    problems.append("rx_bytes %d, expected %d x 526 (inner 512 + Ethernet)" % (tgen["rx_bytes"], rx))
drops = {k: v for k, v in stats["drops"].items() if v}
if drops:
    problems.append("segw drops: %s" % drops)
if stats.get("mempool_in_use_at_exit", 0) != 0:
    problems.append("segw mbufs in use at exit: %d" % stats["mempool_in_use_at_exit"])
print("trafficgen test: sent %d (%.1f s, refused %d), segw decapsulated %d, core side received %d (%.1f %%)"
      % (tx, tgen.get("seconds", 0), tgen.get("tx_dropped", 0), decap, rx, 100.0 * rx / tx if tx else 0))
if problems:
    sys.exit("\n".join(problems))
PY

# --- SIGTERM stops an endless run with the JSON --------------------------
ip netns exec "$gen" "$trafficgen" -q --pcap "$work/uplink.pcap" --tx-port "net_af_packet0,iface=$ta1" \
  --pps 1000 -- "${eal_gen[@]}" >"$work/term.json" 2>"$work/term.err" &
tg_pid=$!
pids+=($tg_pid)
sleep 3
kill -TERM $tg_pid
wait $tg_pid
term_rc=$?
pids=()
[ $term_rc = 0 ] || fail "segw-trafficgen stopped by SIGTERM exited with $term_rc: $(cat "$work/term.err")"
"$python" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["tx_packets"] > 0 and d["seconds"] > 0 else "no packets sent before SIGTERM: %s" % d)' \
  "$work/term.json" || fail "JSON after SIGTERM: $(cat "$work/term.json")"
note "after SIGTERM: $(cat "$work/term.json")"
note "PASS"
