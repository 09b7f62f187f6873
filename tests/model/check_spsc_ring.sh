#!/usr/bin/env bash
# Model check of the SPSC ring protocol (spsc_ring.pml, for
# shared/channel/spsc_ring.h) with spin: exhaustive safety search
# (assertions, deadlock) at several sizes must find no error, and each
# RELAXED_* variant (one release or acquire dropped) must find one, which
# shows the assertions are able to catch what the orderings prevent.
# A missing spin or C compiler is a failure, never a skip: tools/setup.sh
# installs both.
set -u
model=${1:?usage: check_spsc_ring.sh MODEL.pml}
model=$(cd "$(dirname "$model")" && pwd)/$(basename "$model")
command -v spin >/dev/null || { echo "FAIL: spin not installed (tools/setup.sh installs it: apt-get install spin)"; exit 1; }
compiler=$(command -v gcc || command -v cc) || { echo "FAIL: no C compiler (tools/setup.sh installs build-essential)"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/segw-spin-XXXXXX")
trap 'rm -rf "$work"' EXIT
# A private copy: pan writes its error trail beside the model it was made from.
cp "$model" "$work/spsc_ring.pml" || exit 2
cd "$work" || exit 2

# run LABEL SPIN-DEFINES...: prints spin's verdict, sets $errors.
run() {
  local label=$1
  shift
  rm -f pan pan.* _spin_nvr.tmp
  if ! spin "$@" -a spsc_ring.pml >spin.log 2>&1; then
    echo "FAIL $label: spin could not generate a verifier"; cat spin.log; exit 1
  fi
  # SAFETY: assertions and invalid end states (deadlock), no liveness.
  if ! "$compiler" -O2 -DSAFETY -o pan pan.c >cc.log 2>&1; then
    echo "FAIL $label: the verifier does not compile"; cat cc.log; exit 1
  fi
  ./pan -m100000 >pan.log 2>&1
  errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.log | head -1)
  if [ -z "$errors" ]; then
    echo "FAIL $label: no verdict from pan"; cat pan.log; exit 1
  fi
  # An error ends the search early by design; a clean run must be complete.
  if [ "$errors" = 0 ] && grep -qi "search not completed\|max search depth too small" pan.log; then
    echo "FAIL $label: search incomplete"; cat pan.log; exit 1
  fi
  local states
  states=$(sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' pan.log | head -1)
  echo "$label: errors $errors, $states states"
}

status=0
for sizes in "-DCAP=1 -DN=4 -DBURST=1" "-DCAP=2 -DN=7 -DBURST=2" "-DCAP=4 -DN=13 -DBURST=3" \
             "-DCAP=8 -DN=20 -DBURST=4"; do
  # shellcheck disable=SC2086
  run "release/acquire $sizes" $sizes
  if [ "$errors" != 0 ]; then
    echo "FAIL: the ring protocol violates an assertion or deadlocks:"
    grep -E "assertion violated|invalid end state" pan.log
    status=1
  fi
done
for mutation in RELAXED_HEAD_STORE RELAXED_HEAD_LOAD RELAXED_TAIL_STORE; do
  run "$mutation (expected to fail)" "-D$mutation" -DCAP=2 -DN=7 -DBURST=2
  if [ "$errors" = 0 ]; then
    echo "FAIL: $mutation passed: the model cannot tell the ordering matters"
    status=1
  else
    grep -E "assertion violated|invalid end state" pan.log | head -1 | sed 's/^/  found: /'
  fi
done
[ $status -eq 0 ] && echo "spsc ring model: ok"
exit $status
