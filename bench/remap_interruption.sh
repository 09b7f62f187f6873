#!/usr/bin/env bash
# One figure of bench/remap: the downlink interruption after a NAT port change
# under a live tunnel, measured on the NAT's wan side from the first uplink
# ESP packet on the new mapping to the first downlink ESP packet delivered to
# it (tests/integration/remap/stream.py wire), repeated N times on one tunnel.
# The device is strongSwan (kernel-libipsec, no MOBIKE) behind the harness NAT
# with a 2 ms UDP stream both ways (tests/integration/remap/README.md).
#
# Usage (root): bench/remap_interruption.sh verify|follow|strongswan [N]
#   verify, follow  segw as the gateway with `remap = verify|follow`
#   strongswan      strongSwan (charon, kernel-libipsec) as the gateway
#   N               repetitions (default 5)
# Environment: IKX_SEGW_BUILD (default: <repo>/build), IKX_DPD_DELAY (the
# device's dpd_delay, default 2s; see bench/README.md), REMAP_TIMEOUT_S (the
# most one repetition waits for the downlink, default 30), IKX_KEEP=1.
# Prints one JSON object on stdout: {"interruption_ms_<mode>": median, ...}
# (strongswan: "strongswan_interruption_ms"); everything else goes to stderr.
set -uo pipefail

mode=${1:?usage: $0 verify|follow|strongswan [N]}
reps=${2:-5}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here=$root/tests/integration/remap
export IKX_WITH_DEV2=0
export IKX_SEGW_BUILD=${IKX_SEGW_BUILD:-$root/build}
export IKX_DPD_DELAY=${IKX_DPD_DELAY-2s}
# segw's own liveness checks out of the way: one sent to the old mapping in
# the instant of a remap would hold the check back (tests/integration/remap/README.md).
export IKX_SEGW_DPD=${IKX_SEGW_DPD:-300}
case $mode in
  verify|follow) export IKX_RESPONDER=segw; key=interruption_ms_$mode ;;
  strongswan) export IKX_RESPONDER=strongswan; key=strongswan_interruption_ms ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
timeout_s=${REMAP_TIMEOUT_S:-30}
# shellcheck source=../tests/integration/ike_interop/lib.sh
source "$here/../ike_interop/lib.sh"
# shellcheck source=../tests/integration/remap/remap_lib.sh
source "$here/remap_lib.sh"
[ "$(id -u)" = 0 ] || ikx_die "run as root (network namespaces)"

exec 3>&1 1>&2   # JSON on the original stdout (fd 3), the rest on stderr
ikx_trap
trap 'remap_cleanup; ikx_teardown' EXIT
topo_create
certs_generate
ikx_device_confdir dev1 "$IKX_DEV1_ID" "$IKX_DIR/dev1"
scenario="$mode: setup"
tunnel_up "$mode" || exit 1
[ "$failed" = 0 ] || exit 1

runs=()
for i in $(seq "$reps"); do
  range="$((40000 + 1000 * i))-$((40999 + 1000 * i))"
  m0=$(nat_mapping)
  t0=$(now)
  nat_set_ports_atomic "$range"
  ms=
  deadline=$(( $(date +%s) + timeout_s ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    sleep 0.2
    m1=$(nat_mapping)
    [ -n "$m1" ] || continue
    j=$("${STREAM[@]}" wire "$RUN/wan.pcap" --public "$m1" --gw "$GW_NATT" --since "$t0")
    ms=$(json "$j" interruption_ms)
    [ -n "$ms" ] && break
  done
  echo "[remap-bench] $mode run $i: $m0 -> ${m1:-?}: ${ms:-no downlink within ${timeout_s} s} ms"
  [ -n "$ms" ] || { echo "[remap-bench] giving up"; exit 1; }
  runs+=("$ms")
  sleep 1.5   # segw verify: at most one check a second per IKE SA
done
tunnel_down

/usr/bin/python3 - "$key" "${runs[@]}" >&3 <<'PY'
import json, statistics, sys
key, runs = sys.argv[1], [float(x) for x in sys.argv[2:]]
print(json.dumps({key: round(statistics.median(runs), 3), key + "_min": min(runs), key + "_max": max(runs),
                  key + "_runs": runs}))
PY
