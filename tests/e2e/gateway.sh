#!/usr/bin/env bash
# Starts the gateway built in build/ with CONFIG (its ${VAR}s expanded from the environment, e.g. the
# test CA's path), waits until it serves, runs the rest of the command line, and stops the gateway
# again (also when the command fails).
#   tests/e2e/gateway.sh CONFIG LOG -- command...
set -euo pipefail
log=$2
config=$(dirname "$log")/krakend.json
python3 -c 'import os, sys; sys.stdout.write(os.path.expandvars(open(sys.argv[1]).read()))' "$1" >"$config"
shift 3
root=$(cd "$(dirname "$0")/../.." && pwd)
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$config")
(cd "$root/build" && exec ./krakend run -c "$config") >"$log" 2>&1 &
gateway=$!
trap 'kill $gateway 2>/dev/null; wait $gateway 2>/dev/null || true' EXIT
for ((i = 0; i < 120; i++)); do
  curl -sf "http://127.0.0.1:$port/__health" >/dev/null && break
  kill -0 $gateway 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.25
done
curl -sf "http://127.0.0.1:$port/__health" >/dev/null || { echo "gateway did not start" >&2; tail -n 30 "$log" >&2; exit 1; }
grep -q "Total plugins loaded: 1" "$log" || { echo "the gateway did not load the plugin" >&2; cat "$log" >&2; exit 1; }
export KK_GATEWAY=127.0.0.1:$port KK_GATEWAY_CONFIG=$config
"$@"
