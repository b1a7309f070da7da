#!/usr/bin/env bash
# What one request in flight per broker costs against librdkafka's 5 (docs/reliability.md): the plugin in
# the rig's gateway on the 3-node test cluster under wrk, seed-sized body, 16/64/256 connections, 10 s a
# point, ROUNDS (3) rounds. Needs the test services (`tests/services/services.sh start test`) and
# `make krakend-rig plugin`; starts and stops the cluster itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd) rounds=${ROUNDS:-3}
out=$(mktemp -d)
trap 'kill $(cat "$out"/pid 2>/dev/null) 2>/dev/null || true; "$root/tests/services/cluster.sh" stop >/dev/null; rm -rf "$out"' EXIT
eval "$("$root/tests/services/services.sh" env test)"
"$root/tests/services/cluster.sh" start >/dev/null
eval "$("$root/tests/services/cluster.sh" env)"
"$root/tests/services/cluster.sh" topic bench-in-flight >/dev/null
"$root/tests/services/services.sh" schema test bench-in-flight "$root/krakend/example/example-events.proto" >/dev/null
echo '{"some_message":"a bench record of modest size, about like the seed sample"}' >"$out/body.json"
export KK_BENCH_BODY=$out/body.json KK_BENCH_BATCH=0
url=http://127.0.0.1:18090/v1/event/bench-in-flight
for ((round = 1; round <= rounds; round++)); do
  for n in 5 1; do
    python3 - "$n" "$KK_CLUSTER_BOOTSTRAP" "$root/tests/bench/plugin.json" >"$out/config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[3]))
config["endpoints"] = config["endpoints"][:1]
backend = config["endpoints"][0]["backend"][0]["extra_config"]["plugin/http-client"]["krakend-kafka"]
backend.update(bootstrap_servers=sys.argv[2], timeout_ms=20000, kafka={"max.in.flight.requests.per.connection": sys.argv[1]})
print(json.dumps(config))
PY
    (cd "$root/build" && exec ./krakend-rig run -c "$out/config.json") >"$out/gateway.log" 2>&1 &
    pid=$!
    echo $pid >"$out/pid"
    for ((i = 0; i < 120; i++)); do curl -sf http://127.0.0.1:18090/__health >/dev/null && break; sleep 0.25; done
    for c in 16 64 256; do
      wrk -t2 -c$c -d3s -s "$root/tests/bench/post.lua" $url >/dev/null
      t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
      wrk -t2 -c$c -d10s --latency -s "$root/tests/bench/post.lua" $url >"$out/wrk"
      t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
      awk -v round=$round -v n=$n -v c=$c -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
        / 50%/ {p50 = $2} / 99%/ {p99 = $2} /requests in/ {requests = $1} /Requests\/sec/ {rps = $2}
        /Non-2xx/ {failed = $NF}
        END {printf "round %d in-flight %d connections %d: %s req/s, p50 %s, p99 %s, non-2xx %d, gateway CPU %.3f ms/request\n",
             round, n, c, rps, p50, p99, failed, ticks * 1000 / hz / requests}' "$out/wrk"
    done
    kill $pid
    wait $pid 2>/dev/null || true
  done
done
