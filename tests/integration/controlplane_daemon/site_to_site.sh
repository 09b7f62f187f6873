#!/bin/bash
# segw-controlplane as a site-to-site initiator: two daemons (transport udp)
# in a network namespace of the test's own, 127.0.0.2 (responder) and
# 127.0.0.3 (initiator, `connect = 127.0.0.2`). Checks: the initiator brings
# the IKE SA up by itself with the configured selectors; when the responder
# dies, the initiator's liveness checks find it dead, and when a responder is
# back the initiator reconnects on its own; a reload (SIGHUP) that adds a
# connect profile starts it, one that removes it stops reconnecting it
# while its IKE SA stays up; --check-config refuses a
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

# A reload follows the connect profiles: one added starts at once, one
# removed is no longer reconnected while its IKE SA stays up.
sed 's/^listen = 127.0.0.2/listen = 127.0.0.4/; s/gw-a.example/gw-c.example/; s/10.2.0.0/10.3.0.0/' \
  "$dir/responder.conf" > "$dir/responder_c.conf"
start responder_c
cp "$dir/initiator.conf" "$dir/initiator.base.conf"
cat >> "$dir/initiator.conf" <<'EOF2'

[profile to-c]
remote_id = fqdn:gw-c.example
local_id = fqdn:gw-b.example
connect = 127.0.0.4
connect_from = 127.0.0.3
local_subnets = 10.1.0.0/16
remote_subnets = 10.3.0.0/16
reconnect_delay_s = 1
dpd_interval_s = 1
dpd_timeout_s = 3
EOF2
kill -HUP "$initiator_pid"
check "SIGHUP with a new connect profile: reloaded" wait_for "$dir/initiator.log" "SIGHUP: configuration reloaded" 1 5
check "the new profile is announced" wait_for "$dir/initiator.log" "profile to-c: added by a reload" 1 5
check "the new profile's IKE SA comes up without a restart" \
  wait_for "$dir/initiator.log" "IKE SA [0-9]+ established peer gw-c.example" 1 10
check "gw-c sees gw-b with the new profile's selectors" \
  wait_for "$dir/responder_c.log" "established peer gw-b.example .*children 1" 1 5
cp "$dir/initiator.base.conf" "$dir/initiator.conf"
kill -HUP "$initiator_pid"
check "a reload without it: no longer initiated, its IKE SA stays up" \
  wait_for "$dir/initiator.log" "profile to-c: no longer initiated \(removed by a reload\); its IKE SA stays up" 1 5
kill -TERM "$responder_c_pid"; wait "$responder_c_pid" 2>/dev/null
check "the retired profile's IKE SA is found dead" \
  wait_for "$dir/initiator.log" "deleted peer gw-c.example.*peer dead" 1 15
sleep 2  # two reconnect_delay_s: a reconnect would have been tried by now
check "and is not reconnected" bash -c '[ "$(grep -c "initiating IKE SA [0-9]* to 127.0.0.4" "$1")" = 1 ]' _ "$dir/initiator.log"
check "to-a was left alone by both reloads" \
  bash -c '[ "$(grep -c "established peer gw-a.example" "$1")" = 2 ]' _ "$dir/initiator.log"

sed 's/^remote_id = fqdn:gw-a.example/remote_id = %any/' "$dir/initiator.conf" > "$dir/bad.conf"
out=$("$daemon" --check-config -c "$dir/bad.conf" 2>&1); rc=$?
check "a site-to-site profile without an exact remote_id is refused with file:line ($out)" \
  bash -c '[ "$1" = 5 ] && [[ "$2" == *bad.conf:*connect* ]]' _ "$rc" "$out"

echo "== $passed checks passed, $failed failed"
[ "$failed" = 0 ]
