#!/bin/bash
# segw-controlplane's REST API against its OpenAPI document
# (controlplane/api/openapi.yaml), by openapi_check.py: in a network
# namespace of the test's own, the daemon (responder, transport udp on
# 127.0.0.2, API over HTTP on 127.0.0.1:8443 with a bearer token) serves six
# IKE SAs from segw-ike-load (127.1.0.1-6, held). The checker runs a case for
# every operation of the spec (an operation without one fails: a new route
# needs a case), the destructive ones (rekey, move, DELETE) on IKE SAs of
# their own, checks every status, Content-Type and body against the spec,
# the error answers the spec promises on every route (401, 400, 404, 405),
# the event stream and the Prometheus text. Then its --concurrency mode
# hammers the read routes from 8 threads for 10 s while a second
# segw-ike-load sets tunnels up and tears them down (127.3.0.x), and the
# daemon must have answered no 5xx and dropped no connection, still be
# healthy, and its IKE SA count agree between list, stats and metrics and
# with the IKE SAs that should be left.
# Last, a second daemon attached to a segw-dataplane on net_null vdevs
# (packets flowing) serves GET /v1/dataplane and the data-plane metrics,
# checked against the spec, under 4 threads, and for moving figures.
# Usage: openapi.sh BUILD_DIR   (root)
set -uo pipefail
build=${1:?build dir}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
daemon=$build/controlplane/daemon/segw-controlplane
load=$build/tools/ike_load/segw-ike-load
checker=$here/openapi_check.py
spec=${SEGW_OPENAPI_SPEC:-$top/controlplane/api/openapi.yaml}  # another spec: the test of the test
# shellcheck source=daemon_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/daemon_test_lib.sh" oapi
token=openapi-test-token-0123456789
api=http://127.0.0.1:8443
# The checker's own output is indented under this script's checks; its
# exit status is the check's.
run_checker() {  # LOG [openapi_check.py args...]
  local log=$1; shift
  in_ns /usr/bin/python3 "$checker" --server "$api" --token-file "$dir/token" --spec "$spec" "$@" > "$log" 2>&1
  local rc=$?
  sed 's/^/  /' "$log"
  return $rc
}
authed_json() {  # PATH: the body of an authenticated GET
  in_ns curl -s -m 5 -H "Authorization: Bearer $token" "$api$1"
}
py() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

for tool in "$daemon" "$load"; do [ -x "$tool" ] || { echo "missing $tool"; exit 1; }; done
/usr/bin/python3 -c 'import yaml, jsonschema' || { echo "needs Debian python3-yaml and python3-jsonschema (tools/setup.sh)"; exit 1; }

ip netns add "$ns"
ip -n "$ns" link set lo up
echo "$token" > "$dir/token"
cat > "$dir/gw.conf" <<'EOF2'
[controlplane]
transport = udp
listen = 127.0.0.2
api_token_file = token

[pool v4]
range = 10.64.0.0/20

[secret all]
id = %any
psk = segw-bench-ike-psk-0123456789

[profile any]
remote_id = %any
local_id = fqdn:gw.example
pools = v4
local_subnets = 10.2.0.0/16
dpd_interval_s = 0
EOF2
ip netns exec "$ns" "$daemon" -c "$dir/gw.conf" >> "$dir/gw.log" 2>&1 &
gw_pid=$!; pids+=($gw_pid)
check "the daemon serves the API" wait_for "$dir/gw.log" "REST API on http://127.0.0.1:8443/v1/ \(bearer token\)" 1 5
ip netns exec "$ns" "$load" -c "$top/tools/ike_load/psk.conf" --target 127.0.0.2 --count 6 --hold --no-delete -q \
  > "$dir/load.log" 2>&1 &
pids+=($!)
check "six IKE SAs up" wait_for "$dir/gw.log" "IKE SA [0-9]+ established" 6 10

echo "-- conformance: openapi_check.py (every operation, destructive ones included)"
# This daemon has no data plane (transport = udp): GET /v1/dataplane's 200
# is checked at the end, against a second daemon with segw-dataplane.
check "the API conforms to openapi.yaml" run_checker "$dir/check.log" \
  --covered-elsewhere "GET /v1/dataplane: needs segw-dataplane; checked below with one"

echo "-- concurrency: 8 threads on the read routes for 10 s while tunnels come and go"
stats_before=$(authed_json /v1/stats)
# Rounds of 4 IKE SAs that come up, stay 0.3 s and are deleted, from their
# own addresses and ports, until the time is up; TERM ends the round's
# segw-ike-load too (only the PID this loop started).
churn() {  # SECONDS
  local end=$((SECONDS + $1)) child=
  trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; exit 0' TERM
  while [ $SECONDS -lt "$end" ]; do
    ip netns exec "$ns" "$load" -c "$top/tools/ike_load/psk.conf" --target 127.0.0.2 --source-base 127.3.0.1 \
      --ike-port 10600 --natt-port 14600 --count 4 --concurrency 4 --hold 0.3 --timeout 5 --json -q &
    child=$!
    wait "$child"
    echo "round exit $?"
  done
}
churn 11 > "$dir/churn.log" 2>&1 &
churn_pid=$!; pids+=($churn_pid)
sleep 0.5
check "no 5xx or connection errors under load" run_checker "$dir/concurrency.log" --concurrency 8 --duration 10 \
  --covered-elsewhere "GET /v1/dataplane: no data plane here"
wait "$churn_pid" 2>/dev/null
rounds=$(grep -c '^round exit' "$dir/churn.log")
churned=$(grep -o '"established": *[0-9]*' "$dir/churn.log" | awk -F: '{n += $2} END {print n + 0}')
echo "    (segw-ike-load: $rounds rounds, $churned IKE SAs set up and deleted)"
check "tunnels came and went during the run ($churned IKE SAs in $rounds rounds)" [ "$churned" -ge 8 ]
check "every round of segw-ike-load succeeded" bash -c '! grep -q "^round exit [^0]" "$1"' _ "$dir/churn.log"

echo "-- afterwards"
check "the daemon is still running" kill -0 "$gw_pid"
out=$(in_ns curl -s -m 5 -w '\n%{http_code}' "$api/v1/health")
check "GET /v1/health: 200 ok" bash -c '[ "$(tail -1 <<<"$1")" = 200 ] && grep -q "\"status\":\"ok\"" <<<"$1"' _ "$out"
out=$(in_ns curl -s -m 5 -w '\n%{http_code}' "$api/v1/ready")
check "GET /v1/ready: 200" bash -c '[ "$(tail -1 <<<"$1")" = 200 ]' _ "$out"
# The six held IKE SAs less the one the checker deleted (its IKE rekey
# replaced one, which keeps the count) once the churn's deletes are done.
expected=5
count_is() {
  local i n
  for i in $(seq 100); do
    n=$(authed_json /v1/ike-sas | py 'len(d["ike_sas"])')
    [ "$n" = "$1" ] && return 0
    sleep 0.1
  done
  echo "    (GET /v1/ike-sas lists $n IKE SAs, expected $1)"; return 1
}
check "the churn's IKE SAs are all gone: $expected IKE SAs left" count_is $expected
list=$(authed_json /v1/ike-sas)
stats=$(authed_json /v1/stats)
metrics=$(in_ns curl -s -m 5 -H "Authorization: Bearer $token" "$api/metrics")
n_list=$(py 'len(d["ike_sas"])' <<<"$list")
n_established=$(py 'sum(1 for s in d["ike_sas"] if s["state"] == "established")' <<<"$list")
echo "    (list: $n_list, $n_established established; stats: $(py 'd["gauges"]' <<<"$stats"))"
check "stats gauges.ike_sas = the list's length ($n_list)" [ "$(py 'd["gauges"]["ike_sas"]' <<<"$stats")" = "$n_list" ]
check "stats gauges.established = the established IKE SAs listed ($n_established)" \
  [ "$(py 'd["gauges"]["established"]' <<<"$stats")" = "$n_established" ]
check "metrics segw_ike_sas = $n_list and segw_tunnels = $n_established" \
  bash -c 'grep -qx "segw_ike_sas $1" <<<"$3" && grep -qx "segw_tunnels $2" <<<"$3"' _ "$n_list" "$n_established" "$metrics"
delta() { /usr/bin/python3 -c 'import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(b[sys.argv[3]] - a[sys.argv[3]])' \
  "$stats_before" "$stats" "$1"; }
check "stats: the churn's IKE SAs counted as established ($(delta ike_sas_established)) and deleted ($(delta ike_sas_deleted))" \
  bash -c '[ "$1" -ge "$3" ] && [ "$2" -ge "$3" ]' _ "$(delta ike_sas_established)" "$(delta ike_sas_deleted)" "$churned"
check "no engine timeouts (503) in the whole run" [ "$(py 'd["api"]["engine_timeouts"]' <<<"$stats")" = 0 ]
check "the daemon logged no error" bash -c '! grep -qiE "internal error|exception|assert" "$1"' _ "$dir/gw.log"

echo "-- with a data plane: GET /v1/dataplane and the segw_dataplane_* metrics while packets flow"
# segw-dataplane on net_null vdevs: the access port's RX makes packets at
# full speed (garbage frames: every one a counted drop), the core port
# none. A second daemon attaches to its region (transport = dataplane) and
# serves its figures on port 8444.
cat > "$dir/dp.conf" <<EOF2
[dataplane]
sa_capacity = 4096

[channel]
name = segw-oapi-$$
directory = $dir
counters_refresh_ms = 100

[port access]
device = net_null0
next_hop_mac = 02:00:00:00:00:01
address = 192.0.2.1

[port core]
device = net_null1,no-rx=1
next_hop_mac = 02:00:00:00:00:02
address = 10.0.0.1
EOF2
cat > "$dir/b.conf" <<EOF2
[controlplane]
transport = dataplane
channel = segw-oapi-$$
channel_directory = $dir
dataplane_sa_index_bits = 12
api_port = 8444
api_token_file = token

[secret all]
id = %any
psk = segw-bench-ike-psk-0123456789

[profile any]
remote_id = %any
local_id = fqdn:gw.example
EOF2
cat > "$dir/dp-cases.json" <<'EOF2'
[{"name": "data plane figures", "method": "GET", "path": "/v1/dataplane", "expect": 200,
  "min_items": {"ports": 2, "workers": 1, "queues": 9}},
 {"name": "metrics with the data plane", "method": "GET", "path": "/metrics", "expect": 200, "prometheus": true}]
EOF2
ip netns exec "$ns" "$build/dataplane/segw-dataplane" -c "$dir/dp.conf" -- -l 0,1 --no-huge -m 512 --file-prefix "segw-oapi-$$" \
  --log-level=error > "$dir/dp.log" 2>&1 &
pids+=($!)
check "segw-dataplane (net_null) is up" \
  "$build/controlplane/tools/segwctl-dp" --channel "segw-oapi-$$" --directory "$dir" wait-ready --wait 30000
ip netns exec "$ns" "$daemon" -c "$dir/b.conf" >> "$dir/b.log" 2>&1 &
pids+=($!)
check "the second daemon serves the API on 8444" wait_for "$dir/b.log" "REST API on http://127.0.0.1:8444/v1/" 1 10
sleep 0.5
check "GET /v1/dataplane and /metrics conform to openapi.yaml" run_checker "$dir/dp-check.log" \
  --server http://127.0.0.1:8444 --cases "$dir/dp-cases.json" --only "GET /v1/dataplane" --only "GET /metrics"
check "no 5xx or connection errors while packets flow" run_checker "$dir/dp-concurrency.log" \
  --server http://127.0.0.1:8444 --concurrency 4 --duration 4 \
  --only "GET /v1/dataplane" --only "GET /metrics" --only "GET /v1/stats"
dataplane=$(in_ns curl -s -m 5 -H "Authorization: Bearer $token" http://127.0.0.1:8444/v1/dataplane)
echo "    ($(py '"access rx %d (%d/s), worker 0 rx %d, drops %d, alive %s" % (d["ports"][0]["rx_packets"], d["ports"][0]["rx_packets_per_second"], d["workers"][0]["rx_packets"], sum(d["drops"].values()), d["alive"])' <<<"$dataplane"))"
moving=$(py 'int(d["alive"] and d["ports"][0]["rx_packets"] > 0 and d["ports"][0]["rx_packets_per_second"] > 0 and d["workers"][0]["rx_packets"] > 0 and sum(d["drops"].values()) > 0)' <<<"$dataplane")
check "the figures move: access port and worker received, rate > 0, packets not forwarded counted as drops" [ "$moving" = 1 ]
metrics=$(in_ns curl -s -m 5 -H "Authorization: Bearer $token" http://127.0.0.1:8444/metrics)
check "metrics: segw_dataplane_up 1, per-port, per-worker, drops, queue depths" bash -c \
  'grep -qx "segw_dataplane_up 1" <<<"$1" && grep -q "^segw_dataplane_port_rx_packets_total{port=\"access\"} [1-9]" <<<"$1" &&
   grep -q "^segw_dataplane_worker_rx_packets_total{worker=\"0\",lcore=\"1\"} [1-9]" <<<"$1" &&
   grep -q "^segw_dataplane_drops_total{reason=" <<<"$1" && grep -q "^segw_dataplane_queue_depth{queue=\"punt_ring\"}" <<<"$1"' _ "$metrics"

echo "== $passed checks passed, $failed failed"
[ "$failed" = 0 ]
