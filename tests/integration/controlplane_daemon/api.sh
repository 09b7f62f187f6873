#!/bin/bash
# segw-controlplane's REST API and segwctl against real IKE SAs: in a
# network namespace of the test's own, daemon A (responder, transport udp on
# 127.0.0.2, API over HTTP on 127.0.0.1:8443 with a bearer token) serves
# two IKE SAs from segw-ike-load (127.1.0.1, 127.1.0.2, identity
# load.fap.example) and one from daemon B (site-to-site initiator on
# 127.0.0.3, identity gw-b.example, its own API over HTTPS with a
# self-signed certificate on 127.0.0.3:8443). Every route is exercised
# with curl and with segwctl: health, ready, list and its filters, show,
# stats, pools and leases, reload (REST, segwctl and SIGHUP; refused
# reloads change nothing), the event stream (segwctl watch), rekey (IKE and child), move,
# terminate, and the errors (401, 400, 404, 405). Daemon C asks for client
# certificates (mTLS): one from its CA is served, none or a stranger's is
# refused in the handshake. Then a missing
# api_token_file is a configuration error with file:line, and SIGTERM
# stops a daemon with an event client attached.
# Usage: api.sh BUILD_DIR   (root)
set -uo pipefail
build=${1:?build dir}
daemon=$build/controlplane/daemon/segw-controlplane
segwctl=$build/tools/segwctl/segwctl
load=$build/tools/ike_load/segw-ike-load
# shellcheck source=daemon_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/daemon_test_lib.sh" api
token=api-test-token-0123456789
api=http://127.0.0.1:8443
# curl against daemon A: prints the body, then the status on a line of its own.
req() {  # METHOD PATH [curl args...]
  local method=$1 path=$2; shift 2
  in_ns curl -s -m 5 -X "$method" -w '\n%{http_code}\n' "$@" "$api$path"
}
authed() { req "$@" -H "Authorization: Bearer $token"; }
status_is() {  # EXPECTED METHOD PATH [curl args...]: the status code, authenticated
  local expected=$1; shift
  local out; out=$(authed "$@"); local got; got=$(tail -1 <<<"$out")
  [ "$got" = "$expected" ] || { echo "    ($1 $2: HTTP $got, expected $expected: $(head -1 <<<"$out"))"; return 1; }
}
# A value of a JSON document (python3 expression over `d`).
jq_py() { /usr/bin/python3 -c 'import ipaddress,json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
export -f jq_py
ctl() { in_ns env SEGW_API_TOKEN=$token "$segwctl" "$@"; }

ip netns add "$ns"
ip -n "$ns" link set lo up
echo "$token" > "$dir/token"
echo "b-token-abcdefghijklmnop" > "$dir/token-b"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=segw-b" \
  -addext "subjectAltName=IP:127.0.0.3" -keyout "$dir/b.key" -out "$dir/b.pem" 2>/dev/null

cat > "$dir/a.conf" <<'EOF2'
[controlplane]
transport = udp
listen = 127.0.0.2
api_token_file = token

[pool v4]
range = 10.64.0.0/24

[secret all]
id = %any
psk = segw-bench-ike-psk-0123456789

[profile any]
remote_id = %any
local_id = fqdn:gw-a.example
pools = v4
local_subnets = 10.2.0.0/16
dpd_interval_s = 0
EOF2
cat > "$dir/b.conf" <<'EOF2'
[controlplane]
transport = udp
listen = 127.0.0.3
api_listen = 127.0.0.3
api_token_file = token-b
api_tls_certificate = b.pem
api_tls_private_key = b.key

[secret all]
id = %any
psk = segw-bench-ike-psk-0123456789

[profile to-a]
remote_id = fqdn:gw-a.example
local_id = fqdn:gw-b.example
connect = 127.0.0.2
connect_from = 127.0.0.3
local_subnets = 10.1.0.0/16
remote_subnets = 10.2.0.0/16
dpd_interval_s = 0
EOF2
start() {  # NAME
  ip netns exec "$ns" "$daemon" -c "$dir/$1.conf" >> "$dir/$1.log" 2>&1 &
  pids+=($!)
  eval "${1}_pid=$!"
}
start a
check "daemon A serves the API" wait_for "$dir/a.log" "REST API on http://127.0.0.1:8443/v1/ \(bearer token\)" 1 5
start b
check "daemon B serves the API over HTTPS" wait_for "$dir/b.log" "REST API on https://127.0.0.3:8443/v1/" 1 5
ip netns exec "$ns" "$load" -c "$(dirname "$0")/../../../tools/ike_load/psk.conf" --target 127.0.0.2 --count 2 --hold --no-delete -q \
  > "$dir/load.log" 2>&1 &
load_pid=$!; pids+=($load_pid)
check "three IKE SAs up at A" wait_for "$dir/a.log" "IKE SA [0-9]+ established" 3 10

echo "-- health, ready, authentication"
check "GET /v1/health without a token: 200 ok" \
  bash -c '[ "$(tail -1 <<<"$1")" = 200 ] && grep -q "\"status\":\"ok\"" <<<"$1"' _ "$(req GET /v1/health)"
check "GET /v1/ready: 200" bash -c '[ "$(tail -1 <<<"$1")" = 200 ]' _ "$(req GET /v1/ready)"
out=$(req GET /v1/ike-sas)
check "no token: 401 with an error body" bash -c '[ "$(tail -1 <<<"$1")" = 401 ] && grep -q "\"error\"" <<<"$1"' _ "$out"
out=$(req GET /v1/stats -H "Authorization: Bearer wrong")
check "wrong token: 401" bash -c '[ "$(tail -1 <<<"$1")" = 401 ]' _ "$out"
out=$(in_ns "$segwctl" list 2>&1); rc=$?
check "segwctl without a token: exit 1, the server's error ($out)" bash -c '[ "$1" = 1 ] && [[ "$2" == *"missing bearer token"* ]]' _ "$rc" "$out"

echo "-- list, show, stats"
authed GET /v1/ike-sas | head -1 > "$dir/list.json"
check "GET /v1/ike-sas: three IKE SAs" bash -c '[ "$(jq_py "len(d[\"ike_sas\"])" < "$1")" = 3 ]' _ "$dir/list.json"
b_id=$(jq_py '[s["id"] for s in d["ike_sas"] if s["peer_id"]=="gw-b.example"][0]' < "$dir/list.json")
load_ids=($(jq_py '" ".join(str(s["id"]) for s in d["ike_sas"] if s["peer_id"]=="load.fap.example")' < "$dir/list.json"))
inner=$(jq_py '[s["inner_ipv4"] for s in d["ike_sas"] if s["remote"]["address"]=="127.1.0.2"][0]' < "$dir/list.json")
echo "    (gw-b: IKE SA $b_id; load: ${load_ids[*]}; 127.1.0.2 holds $inner)"
out=$(ctl list); rc=$?
check "segwctl list: a table with a header and three rows" \
  bash -c '[ "$1" = 0 ] && [ "$(wc -l <<<"$2")" = 4 ] && head -1 <<<"$2" | grep -q "^ID  *STATE  *PEER"' _ "$rc" "$out"
echo "$out" | sed 's/^/    /'
out=$(ctl list --page-size 1); rc=$?
check "segwctl list --page-size 1: three pages, one table of three rows" \
  bash -c '[ "$1" = 0 ] && [ "$(wc -l <<<"$2")" = 4 ]' _ "$rc" "$out"
out=$(ctl --json list --page-size 2)
check "segwctl --json list --page-size 2: one document with all three" \
  bash -c '[ "$(jq_py "(len(d[\"ike_sas\"]), d[\"matched\"], d[\"next_after\"])" <<<"$1")" = "(3, 3, None)" ]' _ "$out"
out=$(ctl list --page-size 0 2>&1); rc=$?
check "segwctl list --page-size 0: exit 1, the server's error" bash -c '[ "$1" = 1 ] && [[ "$2" == *"limit"* ]]' _ "$rc" "$out"
out=$(ctl list --identity gw-b.example)
check "segwctl list --identity gw-b.example: one row" bash -c '[ "$(wc -l <<<"$1")" = 2 ] && grep -q "gw-b.example" <<<"$1"' _ "$out"
out=$(ctl --json list --identity load.fap.example)
check "segwctl --json list --identity load.fap.example: two" bash -c '[ "$(jq_py "len(d[\"ike_sas\"])" <<<"$1")" = 2 ]' _ "$out"
out=$(ctl --json list --inner "$inner")
check "segwctl list --inner $inner: the SA from 127.1.0.2" \
  bash -c '[ "$(jq_py "\",\".join(s[\"remote\"][\"address\"] for s in d[\"ike_sas\"])" <<<"$1")" = 127.1.0.2 ]' _ "$out"
out=$(authed GET "/v1/ike-sas?public=127.1.0.1" | head -1)
check "GET /v1/ike-sas?public=127.1.0.1: one" bash -c '[ "$(jq_py "len(d[\"ike_sas\"])" <<<"$1")" = 1 ]' _ "$out"
check "GET /v1/ike-sas?inner=bogus: 400" status_is 400 GET "/v1/ike-sas?inner=bogus"
out=$(authed GET "/v1/ike-sas/$b_id" | head -1)
check "GET /v1/ike-sas/$b_id: gw-b's IKE SA with its child and selectors" bash -c '
  [ "$(jq_py "\" \".join(map(str, [d[\"peer_id\"], d[\"state\"], d[\"initiator\"], len(d[\"spi_i\"]), len(d[\"children\"][0][\"inbound_spi\"])]))" <<<"$1")" = "gw-b.example established False 16 8" ] &&
  [ "$(jq_py "d[\"children\"][0][\"remote_ts\"][0][\"start\"] + \" \" + d[\"remote\"][\"address\"]" <<<"$1")" = "10.1.0.0 127.0.0.3" ]' _ "$out"
check "no key material in any answer" bash -c '! grep -qiE "\"[a-z_]*(_key|psk|secret|sk_[a-z]+)[a-z_]*\" *:" <<<"$1$2"' _ "$out" "$(cat "$dir/list.json")"
out=$(ctl show "$b_id"); rc=$?
check "segwctl show $b_id: fields and a child table" \
  bash -c '[ "$1" = 0 ] && grep -q "^peer  *gw-b.example" <<<"$2" && grep -q "^SPI IN  *SPI OUT" <<<"$2"' _ "$rc" "$out"
check "GET /v1/ike-sas/999: 404" status_is 404 GET /v1/ike-sas/999
check "GET /v1/ike-sas/abc: 400" status_is 400 GET /v1/ike-sas/abc
out=$(ctl show 999 2>&1); rc=$?
check "segwctl show 999: exit 1, 'no IKE SA 999'" bash -c '[ "$1" = 1 ] && [[ "$2" == *"no IKE SA 999"* ]]' _ "$rc" "$out"
out=$(authed GET /v1/stats | head -1)
check "GET /v1/stats: counters and gauges" \
  bash -c '[ "$(jq_py "d[\"ike_sas_established\"] >= 3, d[\"gauges\"][\"established\"], \"fragments_dropped\" in d" <<<"$1")" = "(True, 3, True)" ]' _ "$out"
out=$(authed GET /metrics)
check "GET /metrics: Prometheus text with the tunnels and remaps by kind" \
  bash -c 'grep -q "^# TYPE segw_tunnels gauge" <<<"$1" && grep -q "^segw_tunnels 3$" <<<"$1" &&
           grep -q "^segw_remaps_total{kind=\"verified\"} 0$" <<<"$1" && grep -q "^segw_ike_ike_sas_established_total [3-9]" <<<"$1"' _ "$out"
check "GET /metrics without a token: 401" bash -c '[ "$(tail -1 <<<"$1")" = 401 ]' _ "$(req GET /metrics)"
out=$(ctl stats)
check "segwctl stats: a table" bash -c 'grep -q "^ike_sas_established  *[0-9]" <<<"$1" && grep -q "^gauges.established  *3" <<<"$1"' _ "$out"

echo "-- pools, leases, data plane, reload"
out=$(ctl pools); rc=$?
check "segwctl pools: a table with pool v4 and its use" \
  bash -c '[ "$1" = 0 ] && grep -q "^POOL  *FAMILY  *RANGE" <<<"$2" && grep -qE "^v4  *ipv4  *10\.64\.0\.0/24  */32  *254  *2 " <<<"$2"' _ "$rc" "$out"
out=$(ctl pools v4); rc=$?
check "segwctl pools v4: its leases, each with the IKE SA and peer holding it" \
  bash -c '[ "$1" = 0 ] && [ "$(grep -c "/32  *[0-9]*  *load.fap.example" <<<"$2")" = 2 ] && grep -q "$3/32" <<<"$2"' _ "$rc" "$out" "$inner"
out=$(ctl pools v4 --page-size 1); rc=$?
check "segwctl pools v4 --page-size 1: two pages, one table of both leases" \
  bash -c '[ "$1" = 0 ] && [ "$(grep -c "/32  *[0-9]*  *load.fap.example" <<<"$2")" = 2 ]' _ "$rc" "$out"
out=$(ctl --json pools v4 --page-size 1)
check "segwctl --json pools v4 --page-size 1: one document, both leases in address order" \
  bash -c '[ "$(jq_py "len(d[\"leases\"]), d[\"next_after\"], [ipaddress.ip_address(l[\"address\"]) for l in d[\"leases\"]] == sorted(ipaddress.ip_address(l[\"address\"]) for l in d[\"leases\"])" <<<"$1")" = "(2, None, True)" ]' _ "$out"
out=$(authed GET "/v1/pools/v4?limit=1" | head -1)
check "GET /v1/pools/v4?limit=1: one lease and next_after, its address" \
  bash -c '[ "$(jq_py "len(d[\"leases\"]), d[\"next_after\"] == d[\"leases\"][0][\"address\"], d[\"in_use\"]" <<<"$1")" = "(1, True, 2)" ]' _ "$out"
first=$(jq_py 'd["next_after"]' <<<"$out")
out=$(authed GET "/v1/pools/v4?limit=1&after=$first" | head -1)
check "GET /v1/pools/v4?limit=1&after=$first: the other lease, the last page" \
  bash -c '[ "$(jq_py "len(d[\"leases\"]), d[\"leases\"][0][\"address\"] != \"$2\", d[\"next_after\"]" <<<"$1")" = "(1, True, None)" ]' _ "$out" "$first"
check "GET /v1/pools/v4?after=2001:db8::1: 400 (not the pool's family)" status_is 400 GET "/v1/pools/v4?after=2001:db8::1"
out=$(ctl pools --page-size 1 2>&1); rc=$?
check "segwctl pools --page-size 1 without a name: the list (one request), exit 0" bash -c '[ "$1" = 0 ]' _ "$rc"
out=$(ctl pools nope 2>&1); rc=$?
check "segwctl pools nope: exit 1, 'no pool'" bash -c '[ "$1" = 1 ] && [[ "$2" == *"no pool"* ]]' _ "$rc" "$out"
out=$(ctl dataplane 2>&1); rc=$?
check "segwctl dataplane without a data plane (transport = udp): exit 1, says so" \
  bash -c '[ "$1" = 1 ] && [[ "$2" == *"no data plane"* ]]' _ "$rc" "$out"
out=$(ctl reload); rc=$?
check "segwctl reload (the same file): reloaded, 3 IKE SAs kept ($out)" \
  bash -c '[ "$1" = 0 ] && [[ "$2" == *"configuration reloaded"*"3 IKE SA(s) kept"* ]]' _ "$rc" "$out"
cp "$dir/a.conf" "$dir/a.conf.good"
sed -i 's|^range = 10.64.0.0/24$|range = 10.64.0.200-10.64.0.210|' "$dir/a.conf"
out=$(ctl reload 2>&1); rc=$?
check "segwctl reload with a range that loses the leases: exit 1, refused, nothing changed" \
  bash -c '[ "$1" = 1 ] && [[ "$2" == *"does not fit"* ]] && grep -q "10.64.0.0/24" <<<"$3"' _ "$rc" "$out" "$(ctl pools)"
printf '[pool' >> "$dir/a.conf"
out=$(ctl reload 2>&1); rc=$?
check "segwctl reload of a file that does not parse: exit 1, the file:line error" \
  bash -c '[ "$1" = 1 ] && [[ "$2" == *"a.conf:"* ]]' _ "$rc" "$out"
cp "$dir/a.conf.good" "$dir/a.conf"
kill -HUP "$a_pid"
check "SIGHUP reloads too (logged)" wait_for "$dir/a.log" "SIGHUP: configuration reloaded" 1 5
check "every reload's outcome is logged" wait_for "$dir/a.log" "reload refused" 2 5
check "unknown route: 404" status_is 404 GET /v1/nothing
check "PUT /v1/ike-sas/1: 405" status_is 405 PUT /v1/ike-sas/1 -d '{}'
check "GET /v1/ike-sas/1/rekey: 405" status_is 405 GET "/v1/ike-sas/$b_id/rekey"
# curl -X POST without -d sends neither Content-Length nor a body: no body,
# answered at once (httplib alone waited 10 s for one and gave 400).
check "POST without Content-Length or body (curl -X POST): answered within 2 s, 404" \
  status_is 404 POST /v1/ike-sas/999/rekey -m 2
check "POST with a chunked body: read, 400 for its bad JSON" \
  status_is 400 POST "/v1/ike-sas/$b_id/rekey" -H "Transfer-Encoding: chunked" -d '{"child":'
check "POST with a Content-Length that is not a number: 400" \
  status_is 400 POST "/v1/ike-sas/$b_id/rekey" -H "Content-Length: many"

echo "-- events, rekey, move, terminate"
ip netns exec "$ns" env SEGW_API_TOKEN=$token "$segwctl" watch > "$dir/watch.log" 2>&1 &
watch_pid=$!; pids+=($watch_pid)
ip netns exec "$ns" curl -s -N -m 4 -H "Authorization: Bearer $token" "$api/v1/events" > "$dir/curl-events.log" 2>&1 &
curl_pid=$!; pids+=($curl_pid)
sleep 0.5
first=${load_ids[0]}; second=${load_ids[1]}
check "POST /v1/ike-sas/$second/rekey {\"child\":\"x\"}: 400" status_is 400 POST "/v1/ike-sas/$second/rekey" -d '{"child":"x"}'
out=$(ctl rekey "$second" --child); rc=$?
check "segwctl rekey $second --child ($out)" bash -c '[ "$1" = 0 ]' _ "$rc"
check "the child rekey is in the event stream" wait_for "$dir/watch.log" "child_installed  ike_sa $second " 1 5
check "POST /v1/ike-sas/$b_id/rekey (IKE): 202" status_is 202 POST "/v1/ike-sas/$b_id/rekey" -d ''
check "the IKE rekey is in the event stream" wait_for "$dir/watch.log" "ike_rekeyed  ike_sa $b_id " 1 5
check "curl sees the same events as text/event-stream" wait_for "$dir/curl-events.log" "^event: ike_rekeyed$" 1 5
check "move: port 0 is 400" status_is 400 POST "/v1/ike-sas/$first/move" -d '{"address":"127.1.0.9","port":0}'
check "move: a bad address is 400" status_is 400 POST "/v1/ike-sas/$first/move" -d '{"address":"127.1.0","port":10500}'
check "move: malformed JSON is 400" status_is 400 POST "/v1/ike-sas/$first/move" -d '{"address":'
check "move: unknown IKE SA is 404" status_is 404 POST "/v1/ike-sas/999/move" -d '{"address":"127.1.0.9","port":10500}'
out=$(ctl move "$first" 127.1.0.9 70000 2>&1); rc=$?
check "segwctl move with port 70000: exit 1, the server's error" bash -c '[ "$1" = 1 ] && [[ "$2" == *"out of range"* ]]' _ "$rc" "$out"
out=$(authed GET "/v1/ike-sas/$first" | head -1)
check "nothing moved on those errors" bash -c '[ "$(jq_py "d[\"remote\"][\"address\"]" <<<"$1")" = 127.1.0.1 ]' _ "$out"
out=$(ctl move "$first" 127.1.0.9 10509); rc=$?
check "segwctl move $first 127.1.0.9 10509 ($out)" bash -c '[ "$1" = 0 ] && [[ "$2" == *"127.1.0.9:10509"* ]]' _ "$rc" "$out"
check "the move is in the event stream" wait_for "$dir/watch.log" "moved  ike_sa $first " 1 5
out=$(ctl --json list --public 127.1.0.9)
check "the SA is listed at its new address" bash -c '[ "$(jq_py "[s[\"remote\"][\"port\"] for s in d[\"ike_sas\"]]" <<<"$1")" = "[10509]" ]' _ "$out"
check "DELETE /v1/ike-sas/999: 404" status_is 404 DELETE /v1/ike-sas/999
out=$(ctl terminate "$second"); rc=$?
check "segwctl terminate $second" bash -c '[ "$1" = 0 ]' _ "$rc"
check "the delete is in the event stream" wait_for "$dir/watch.log" "deleted  ike_sa $second " 1 5
check "GET /v1/ike-sas/$second afterwards: 404" status_is 404 GET "/v1/ike-sas/$second"
echo "    (segwctl watch saw:)"; sed 's/^/      /' "$dir/watch.log"
# Resuming: the first event curl saw, then `segwctl --json watch
# --last-event-id` of it gets every later one, in order, starting with the
# next sequence (what a policy function does after losing its connection).
first_event_id=$(grep -m1 '^id: ' "$dir/curl-events.log" | cut -d' ' -f2)
ip netns exec "$ns" env SEGW_API_TOKEN=$token timeout 2 "$segwctl" --json watch --last-event-id "$first_event_id" \
  > "$dir/resumed.json" 2>/dev/null
resumed_in_order() {  # the replay: ids first+1, first+2, ... and the kinds of the watch log after the first event
  /usr/bin/python3 - "$first_event_id" "$dir/resumed.json" "$dir/watch.log" <<'PY'
import json, sys
stream, first = sys.argv[1].split("-")
events = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
ids = [e["id"] for e in events]
want = ["%s-%d" % (stream, int(first) + 1 + i) for i in range(len(ids))]
kinds = [e["kind"] for e in events]
watched = [line.split()[1] for line in open(sys.argv[3]) if line[:1].isdigit()][1:]
print("    (%d replayed after %s: %s)" % (len(events), sys.argv[1], " ".join(kinds)))
n = min(len(kinds), len(watched))  # either may have seen a later event the other has not yet
sys.exit(0 if n >= 3 and ids == want and kinds[:n] == watched[:n] else 1)
PY
}
check "segwctl watch --last-event-id: every later event replayed in order" resumed_in_order
out=$(ctl watch --last-event-id yesterday 2>&1); rc=$?
check "segwctl watch --last-event-id yesterday: exit 1, the server's error" \
  bash -c '[ "$1" = 1 ] && [[ "$2" == *"Last-Event-ID"* ]]' _ "$rc" "$out"

echo "-- HTTPS (daemon B, self-signed)"
out=$(in_ns "$segwctl" --server https://127.0.0.3:8443 --token-file "$dir/token-b" --insecure list); rc=$?
check "segwctl --insecure list over https: gw-a's IKE SA" bash -c '[ "$1" = 0 ] && grep -q "gw-a.example" <<<"$2"' _ "$rc" "$out"
out=$(in_ns "$segwctl" --server https://127.0.0.3:8443 --token-file "$dir/token-b" list 2>&1); rc=$?
check "without --insecure the self-signed certificate is refused (exit 3)" bash -c '[ "$1" = 3 ]' _ "$rc"
out=$(in_ns "$segwctl" --server https://127.0.0.3:8443 --token-file "$dir/token-b" --ca-file "$dir/b.pem" stats); rc=$?
check "with --ca-file it is verified" bash -c '[ "$1" = 0 ]' _ "$rc"

echo "-- client certificates (daemon C: HTTPS with api_tls_client_ca)"
# A CA for the operators' clients, one operator certificate from it, and a
# stranger's self-signed one.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=segw api clients" \
  -keyout "$dir/clients-ca.key" -out "$dir/clients-ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=operator" \
  -keyout "$dir/operator.key" -out "$dir/operator.csr" 2>/dev/null
openssl x509 -req -in "$dir/operator.csr" -CA "$dir/clients-ca.pem" -CAkey "$dir/clients-ca.key" \
  -CAcreateserial -days 2 -out "$dir/operator.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=stranger" \
  -keyout "$dir/stranger.key" -out "$dir/stranger.pem" 2>/dev/null
cat > "$dir/c.conf" <<'EOF2'
[controlplane]
transport = udp
listen = 127.0.0.4
api_listen = 127.0.0.4
api_token_file = token
api_tls_certificate = b.pem
api_tls_private_key = b.key
api_tls_client_ca = clients-ca.pem

[secret all]
id = %any
psk = segw-bench-ike-psk-0123456789

[profile any]
remote_id = %any
local_id = fqdn:gw-c.example
EOF2
start c
check "daemon C serves the API over HTTPS with client certificates" \
  wait_for "$dir/c.log" "REST API on https://127.0.0.4:8443/v1/ \(bearer token, client certificates\)" 1 5
c_ctl() { in_ns env SEGW_API_TOKEN=$token "$segwctl" --server https://127.0.0.4:8443 --insecure "$@"; }
out=$(c_ctl --client-cert "$dir/operator.pem" --client-key "$dir/operator.key" stats); rc=$?
check "segwctl with the operator's certificate: served" bash -c '[ "$1" = 0 ] && grep -q "^ike_sas_established" <<<"$2"' _ "$rc" "$out"
out=$(c_ctl stats 2>&1); rc=$?
check "segwctl without a client certificate: refused in the handshake (exit 3; got $rc: ${out//$'\n'/ })" bash -c '[ "$1" = 3 ]' _ "$rc"
out=$(c_ctl --client-cert "$dir/stranger.pem" --client-key "$dir/stranger.key" stats 2>&1); rc=$?
check "segwctl with a certificate from another CA: refused (exit 3; got $rc: ${out//$'\n'/ })" bash -c '[ "$1" = 3 ]' _ "$rc"
out=$(c_ctl --client-cert "$dir/operator.pem" stats 2>&1); rc=$?
check "segwctl --client-cert without --client-key: usage error (exit 2)" bash -c '[ "$1" = 2 ]' _ "$rc"
code=$(in_ns curl -s -k -m 5 -o /dev/null -w '%{http_code}' --cert "$dir/operator.pem" --key "$dir/operator.key" \
  https://127.0.0.4:8443/v1/stats)
check "curl with the certificate but no token: 401 (both are required)" [ "$code" = 401 ]
code=$(in_ns curl -s -k -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" https://127.0.0.4:8443/v1/health)
check "curl without a certificate: no HTTP answer at all, not even /v1/health ($code)" [ "$code" = 000 ]
sed 's/^api_tls_certificate = b.pem$//; s/^api_tls_private_key = b.key$//' "$dir/c.conf" > "$dir/c-bad.conf"
out=$("$daemon" --check-config -c "$dir/c-bad.conf" 2>&1); rc=$?
check "api_tls_client_ca without HTTPS is refused with file:line ($out)" \
  bash -c '[ "$1" = 5 ] && [[ "$2" == *c-bad.conf:*api_tls_client_ca*HTTPS* ]]' _ "$rc" "$out"

echo "-- configuration and shutdown"
sed 's/^api_token_file = token$/api_token_file = no-such-token/' "$dir/a.conf" > "$dir/bad.conf"
out=$("$daemon" --check-config -c "$dir/bad.conf" 2>&1); rc=$?
check "a missing api_token_file is refused with file:line ($out)" \
  bash -c '[ "$1" = 5 ] && [[ "$2" == *bad.conf:4:*api_token_file*no-such-token* ]]' _ "$rc" "$out"
kill -TERM "$a_pid"
stopped=no
for i in $(seq 50); do kill -0 "$a_pid" 2>/dev/null || { stopped=yes; break; }; sleep 0.1; done
check "SIGTERM stops daemon A within 5 s with an event client attached" [ "$stopped" = yes ]
check "segwctl watch ends when the server goes" wait_for "$dir/watch.log" "event stream ended" 1 5

echo "== $passed checks passed, $failed failed"
[ "$failed" = 0 ]
