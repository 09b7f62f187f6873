# The harness the segw-controlplane daemon tests share (api.sh, openapi.sh,
# site_to_site.sh): one network namespace and one run directory per test
# run, named after NAME and the test's PID, torn down on exit with every
# process the test started (by PID); ok/FAIL lines and their counts.
# Usage: source daemon_test_lib.sh NAME   (sets ns, dir, pids, passed, failed)
ns=segw-$1-$$
dir=$(mktemp -d "/tmp/segw-$1.XXXXXX")
pids=()
passed=0; failed=0
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  # Anything still inside the test's namespace was started there by the
  # test: it must not outlive it (a process whose PID was not recorded).
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  [ "$failed" = 0 ] && rm -rf "$dir"
}
trap cleanup EXIT
check() {
  local what=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "  ok    $what"; else failed=$((failed + 1)); echo "  FAIL  $what"; fi
}
wait_for() {  # FILE PATTERN COUNT SECONDS
  local i
  for i in $(seq $(( $4 * 10 ))); do
    [ "$(grep -cE "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
    sleep 0.1
  done
  echo "    (waited $4 s for $3 x '$2' in $1)"; tail -5 "$1" | sed 's/^/    /'; return 1
}
# (Background processes are started with ip netns exec itself, so that $!
# is their PID, the one cleanup kills.)
in_ns() { ip netns exec "$ns" "$@"; }
