#!/usr/bin/env bash
# Runs one libFuzzer binary for a bounded time on a scratch copy of its
# seed corpus (libFuzzer writes new inputs into the first corpus directory;
# the seeds in the source tree stay read-only).
#   run_fuzzer.sh FUZZER SEED_DIR ARTIFACT_DIR [libFuzzer options...]
# Exit status: libFuzzer's (non-zero on a crash, leak, UB report, timeout
# or out-of-memory); the input that caused it is kept in ARTIFACT_DIR.
set -uo pipefail
fuzzer=$1 seeds=$2 artifacts=$3
shift 3
scratch=$(mktemp -d "${TMPDIR:-/tmp}/segw-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$artifacts"
"$fuzzer" -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" "$scratch" "$seeds"
