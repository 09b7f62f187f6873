#!/bin/bash
# Runs a command inside a network namespace of its own with two veth pairs,
# the data plane's ports and the test's ends of them:
#   access: sa0 (segw-dataplane, net_af_packet) <-> sa1 (the test: peers)
#   core:   sc0 (segw-dataplane, net_af_packet) <-> sc1 (the test: core hosts)
# No addresses, IPv6 off: the kernel sends nothing of its own on them. The
# namespace (and with it the veths) goes when the command ends.
# Usage: run_in_netns.sh COMMAND [ARGS...]   (root)
set -euo pipefail
ns="segw-storm-$$"
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip netns add "$ns"
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
ip -n "$ns" link add sa0 type veth peer name sa1
ip -n "$ns" link add sc0 type veth peer name sc1
for dev in lo sa0 sa1 sc0 sc1; do ip -n "$ns" link set "$dev" up; done
rc=0
ip netns exec "$ns" "$@" || rc=$?
exit $rc
