#!/usr/bin/env bash
# DPDK telemetry of segw-dataplane through DPDK's own client
# (dpdk-telemetry.py, Debian dpdk-dev): /segw/ports, /segw/workers,
# /segw/drops, /segw/sas and /segw/sas,SPI answer with the figures an
# operator reads, and no answer carries key material (the embedded default's
# keys must not appear in any of them). An unknown SPI is an error answer,
# not a crash: the data plane still answers afterwards.
# Usage: run.sh BUILD_DIR   (root)
set -uo pipefail
build=${1:?build dir}
dataplane=$build/dataplane/segw-dataplane
prefix=segw-telemetry-$$
dir=$(mktemp -d /tmp/segw-telemetry.XXXXXX)
passed=0; failed=0
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
check() {
  local what=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "  ok    $what"; else failed=$((failed + 1)); echo "  FAIL  $what"; fi
}
command -v dpdk-telemetry.py > /dev/null || { echo "dpdk-telemetry.py missing (Debian dpdk-dev: tools/setup.sh)"; exit 1; }

"$dataplane" -d 60 -- -l 0,1 --no-huge -m 512 --file-prefix "$prefix" --log-level=error > "$dir/dataplane.log" 2>&1 &
pid=$!
# The socket exists from EAL's start; segw's commands once it runs.
for _ in $(seq 200); do
  [ -S "/var/run/dpdk/$prefix/dpdk_telemetry.v2" ] && grep -q "worker(s)" "$dir/dataplane.log" && break
  sleep 0.1
done
ask() {  # COMMAND...: one JSON line per command
  printf '%s\n' "$@" | timeout 10 dpdk-telemetry.py -f "$prefix" 2>&1
}
out=$(ask /segw/ports /segw/workers /segw/drops /segw/sas /segw/sas,0x00010001 /segw/sas,0x00020001 \
          /segw/sas,0x7fffffff /segw/sas)
echo "$out" | sed 's/^/    /'
has() {  # COMMAND KEY...: the answer to COMMAND (first one) has every KEY
  local command=$1; shift
  ANSWERS=$out /usr/bin/python3 - "$command" "$@" <<'PY'
import json, os, sys
command, keys = sys.argv[1], sys.argv[2:]
for line in os.environ["ANSWERS"].splitlines():
    line = line.strip()
    if not line.startswith("{"):
        continue
    answer = json.loads(line)
    if command in answer and isinstance(answer[command], dict):
        missing = [k for k in keys if k not in answer[command]]
        if missing:
            print("    %s lacks %s" % (command, missing)); sys.exit(1)
        sys.exit(0)
print("    no answer to %s" % command); sys.exit(1)
PY
}
check "/segw/ports: both ports' packets and bytes" has /segw/ports access_rx_packets access_tx_packets core_rx_packets core_tx_bytes
check "/segw/workers: per-worker lcore and counters" has /segw/workers worker0_lcore worker0_decapsulated worker0_encapsulated
check "/segw/drops: every drop reason" has /segw/drops malformed unknown_spi replay icv_failure no_route tx_full
check "/segw/sas: counts" has /segw/sas inbound outbound capacity
sa_lines=$(grep -c '"direction"' <<<"$out")
check "/segw/sas,SPI: one SA's counters (inbound and outbound)" [ "$sa_lines" = 2 ]
answers=$(grep '^{' <<<"$out")
check "an unknown SPI is an error answer, and the data plane still answers" \
  bash -c '[ "$(sed -n 7p <<<"$1")" = "{\"/segw/sas\": null}" ] && sed -n 8p <<<"$1" | grep -q "\"inbound\": 1"' _ "$answers"
# The embedded default's keys (segw-dataplane --print-default-config).
keys=$("$dataplane" --print-default-config | sed -n 's/^\(encryption_key\|integrity_key\) = //p')
no_keys() {
  local key
  for key in $keys; do grep -qi "$key" <<<"$out" && { echo "    a key appears in a telemetry answer"; return 1; }; done
  [ -n "$keys" ]
}
check "no telemetry answer carries key material" no_keys
check "the data plane is still running" kill -0 "$pid"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
