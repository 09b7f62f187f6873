#!/bin/bash
# segw-controlplane as a site-to-site initiator: two daemons (transport udp)
# in a network namespace of the test's own, 127.0.0.2 (responder) and
# 127.0.0.3 (initiator, `connect = 127.0.0.2`). Checks: the initiator brings
# the IKE SA up by itself with the configured selectors; when the responder
# dies, the initiator's liveness checks find it dead, and when a responder is
# back the initiator reconnects on its own; --check-config refuses a
# site-to-site profile without an exact remote_id (file:line in the error).
# Usage: site_to_site.sh BUILD_DIR   (root)
set -uo pipefail
build=${1:?build dir}
daemon=$build/controlplane/daemon/segw-controlplane
# shellcheck source=daemon_test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/daemon_test_lib.sh" s2s
ip netns add "$ns"
ip -n "$ns" link set lo up

cat > "$dir/responder.conf" <<'EOF'
[controlplane]
transport = udp
listen = 127.0.0.2
retransmit_timeout_ms = 300
retransmit_tries = 2

[secret site]
id = %any
psk = site-to-site-test-psk-0123456789

[profile sites]
remote_id = %any
local_id = fqdn:gw-a.example
local_subnets = 10.2.0.0/16
dpd_interval_s = 1
EOF
cat > "$dir/initiator.conf" <<'EOF'
[controlplane]
transport = udp
listen = 127.0.0.3
retransmit_timeout_ms = 300
retransmit_tries = 2

[secret site]
id = %any
psk = site-to-site-test-psk-0123456789

[profile to-a]
remote_id = fqdn:gw-a.example
local_id = fqdn:gw-b.example
connect = 127.0.0.2
connect_from = 127.0.0.3
local_subnets = 10.1.0.0/16
remote_subnets = 10.2.0.0/16
reconnect_delay_s = 1
dpd_interval_s = 1
dpd_timeout_s = 3
EOF
start() {  # NAME
  ip netns exec "$ns" "$daemon" -c "$dir/$1.conf" >> "$dir/$1.log" 2>&1 &
  pids+=($!)
  eval "${1}_pid=$!"
}
start responder
start initiator
check "initiator brings the IKE SA up by itself" wait_for "$dir/initiator.log" "IKE SA [0-9]+ established peer gw-a.example" 1 10
check "responder sees gw-b with the configured selectors" wait_for "$dir/responder.log" "established peer gw-b.example .*children 1" 1 5
kill -TERM "$responder_pid"; wait "$responder_pid" 2>/dev/null
check "initiator finds the responder dead" wait_for "$dir/initiator.log" "deleted .*peer dead" 1 15
start responder
check "initiator reconnects on its own" wait_for "$dir/initiator.log" "IKE SA [0-9]+ established peer gw-a.example" 2 15

sed 's/^remote_id = fqdn:gw-a.example/remote_id = %any/' "$dir/initiator.conf" > "$dir/bad.conf"
out=$("$daemon" --check-config -c "$dir/bad.conf" 2>&1); rc=$?
check "a site-to-site profile without an exact remote_id is refused with file:line ($out)" \
  bash -c '[ "$1" = 5 ] && [[ "$2" == *bad.conf:*connect* ]]' _ "$rc" "$out"

echo "== $passed checks passed, $failed failed"
[ "$failed" = 0 ]
