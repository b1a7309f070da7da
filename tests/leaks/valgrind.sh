#!/usr/bin/env bash
# Runs the test binaries cargo builds for the given targets (e.g. `--lib --test publish`; not the service
# binary cargo builds beside them for the integration tests) under valgrind,
# with the real services up: it fails on any block lost (definitely or indirectly) or any memory error
# outside tests/leaks/rdkafka.supp, and prints each binary's leak summary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
binaries=$(cargo test --release --no-run --message-format=json "$@" |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])')
for binary in $binaries; do
  log=$(mktemp)
  echo "valgrind: $(basename "$binary")"
  # --run-libc-freeres=no: at exit valgrind has glibc free its own caches, and glibc's address-lookup cache
  # waits there for a lock a resolver thread (librdkafka's, tokio's) held when the process exited: the
  # binary then hangs after its tests passed. glibc's caches are reachable, never counted as lost.
  if ! valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
      --run-libc-freeres=no --suppressions="$here/rdkafka.supp" --error-exitcode=99 --num-callers=40 \
      "$binary" --include-ignored --test-threads=2 >"$log" 2>&1; then
    cat "$log"
    echo "valgrind: $(basename "$binary") lost memory or failed (above)" >&2
    exit 1
  fi
  grep -E "test result|definitely lost|indirectly lost|possibly lost|ERROR SUMMARY|suppressed:" "$log"
  rm -f "$log"
done
