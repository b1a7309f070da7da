#!/usr/bin/env bash
# `make bench`: every scenario on this machine, same broker, payload and concurrency, then a table and
# one RATIO line per comparison. Runs with the test services' environment; stops what it starts.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${KK_BENCH_SECONDS:-10} connections=${KK_BENCH_CONNECTIONS:-64} rounds=${KK_BENCH_ROUNDS:-3}
out=$(mktemp -d)
export KAFKA_BROKERS=$KK_BOOTSTRAP_SERVERS # the CE-style publisher's brokers, as KrakenD CE takes them
# The broker's JVM, whose CPU per request is reported beside the gateway's: they share the machine's cores.
broker=$(ss -ltnpH "sport = :${KK_BOOTSTRAP_SERVERS##*:}" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
trap 'kill $(cat "$out"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$out"' EXIT
"$root/tests/services/services.sh" example test >/dev/null 2>&1
"$root/tests/services/services.sh" schema test bench-orders "$root/tests/bench/orders.proto" >/dev/null 2>&1
export KK_BENCH_BODIES=$out
python3 "$root/tests/bench/bodies.py" "$out"

# scenario NAME CONFIG PATH BODY: the front end CONFIG names under wrk sending BODY (a file of bodies.py),
# with its CPU time and memory. Every gateway scenario runs the same binary, the bench rig
# (build/krakend-rig: the product's gateway plus the "static" client and the CE-style publisher,
# tests/bench/gateway), so they differ by their config alone. service.json is the service alone, on
# 127.0.0.1:18092; gateway-service.json is the gateway forwarding to it with backend/http, and its CPU and
# memory are those of both processes together.
start_service() {
  "$KK_SERVICE_BIN" serve -c "$root/tests/bench/service.json" >"$out/$1.service.log" 2>&1 &
  echo $! >"$out/$1.service.pid"
  for ((i = 0; i < 120; i++)); do curl -sf "http://127.0.0.1:18092/__health" >/dev/null && break; sleep 0.25; done
  curl -sf "http://127.0.0.1:18092/__health" >/dev/null || { cat "$out/$1.service.log" >&2; exit 1; }
}
scenario() {
  local name=$1 config=$2 port=18090 pids=()
  export KK_BENCH_BODY=$out/$4.json KK_BENCH_BATCH=$([[ $4 == batch ]] && echo 1 || echo 0)
  if [[ $config == *service.json ]]; then start_service "$name"; pids+=("$(cat "$out/$name.service.pid")"); fi
  if [[ $config == service.json ]]; then
    port=18092
  else
    (cd "$root/build" && exec ./krakend-rig run -c "$root/tests/bench/$config") >"$out/$name.log" 2>&1 &
    pids+=($!)
    echo $! >"$out/$name.pid"
    for ((i = 0; i < 120; i++)); do curl -sf "http://127.0.0.1:18090/__health" >/dev/null && break; sleep 0.25; done
  fi
  local url=http://127.0.0.1:$port$3
  wrk -t2 -c"$connections" -d3s -s "$root/tests/bench/post.lua" "$url" >/dev/null # warm-up
  local ticks=$(getconf CLK_TCK) cpu0 cpu1 broker0 broker1
  cpu() { local pid total=0; for pid in "${pids[@]}"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo $total; }
  memory() { local pid; for pid in "${pids[@]}"; do cat "/proc/$pid/status"; done; }
  cpu0=$(cpu)
  broker0=$(awk '{print $14 + $15}' "/proc/$broker/stat")
  local machine0 machine1 # the machine's CPU line: steal (time the hypervisor gave to others) is the 8th field
  machine0=$(head -1 /proc/stat)
  ( # wrk's CPU: what this subshell's reaped children used (cutime + cstime)
    wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$root/tests/bench/post.lua" "$url" >"$out/$name.wrk"
    awk '{print $16 + $17}' "/proc/$BASHPID/stat" >"$out/$name.wrk-cpu"
  )
  cpu1=$(cpu)
  memory >"$out/$name.status"
  broker1=$(awk '{print $14 + $15}' "/proc/$broker/stat")
  machine1=$(head -1 /proc/stat)
  python3 - "$name" "$out/$name.wrk" "$(((cpu1 - cpu0)))" "$ticks" "$out/$name.status" "$machine0" "$machine1" \
    "$((broker1 - broker0))" "$(cat "$out/$name.wrk-cpu")" <<'PY'
import re, sys
name, wrk, cpu, ticks, status = sys.argv[1], open(sys.argv[2]).read(), int(sys.argv[3]), int(sys.argv[4]), open(sys.argv[5]).read()
m0, m1 = ([int(x) for x in line.split()[1:9]] for line in sys.argv[6:8])
delta = [b - a for a, b in zip(m0, m1)]
steal = 100 * delta[7] / max(1, sum(delta))
busy = 100 * (sum(delta) - delta[3] - delta[4] - delta[7]) / max(1, sum(delta) - delta[7])
broker_s, wrk_s = int(sys.argv[8]) / int(sys.argv[4]), int(sys.argv[9]) / int(sys.argv[4])
unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
def pct(p):
    v, u = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)$", wrk, re.M).groups()
    return float(v) * unit[u]
requests = int(re.search(r"(\d+) requests in", wrk).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
mem = lambda k: sum(int(v) for v in re.findall(rf"{k}:\s+(\d+) kB", status)) / 1024  # of every process
throughput = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
rss, peak, failed = mem("VmRSS"), mem("VmHWM"), errors.group(1) if errors else 0
print(f"SCENARIO {name} requests={requests} throughput={throughput:.1f} p50_ms={pct(50):.3f} p99_ms={pct(99):.3f} "
      f"cpu_s_per_1000={cpu / ticks / requests * 1000:.3f} rss_mb={rss:.1f} peak_rss_mb={peak:.1f} errors={failed} "
      f"steal_pct={steal:.0f} broker_cpu_s_per_1000={broker_s / requests * 1000:.3f} "
      f"wrk_cpu_s_per_1000={wrk_s / requests * 1000:.3f} busy_pct={busy:.0f}")
PY
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
}

# The HTTP scenarios take turns, round after round, and each is reported by its median round: a shared
# machine's noise (other tenants, the broker's JVM) lands on all of them rather than on one.
{
  for ((round = 1; round <= rounds; round++)); do
    scenario ceiling plain.json /bench/ceiling seed
    scenario native_pubsub native.json /v1/native seed
    scenario plugin plugin.json /v1/event/example-events seed
    scenario service service.json /v1/event/example-events seed
    scenario gateway_service gateway-service.json /v1/event/example-events seed
    scenario ceiling_4k plain.json /bench/ceiling order
    scenario plugin_4k plugin.json /v1/event/bench-orders order
    scenario plugin_batch50 plugin.json /v1/batch/example-events batch
  done
  (cd "$root" && cargo bench --bench publish -q 2>/dev/null | grep '^SCENARIO')
} | tee "$out/results"

python3 - "$out/results" "$seconds" "$connections" <<'PY'
import sys
runs = {}
for line in open(sys.argv[1]):
    _, name, *kv = line.split()
    runs.setdefault(name, []).append(dict(x.split("=") for x in kv))
median = lambda rs: sorted(rs, key=lambda r: float(r.get("throughput", 0)))[len(rs) // 2]
rows = {name: median(rs) for name, rs in runs.items()}
print(f"\nkrakend-kafka benchmark: {sys.argv[3]} connections, {sys.argv[2]} s per HTTP scenario and round, "
      f"median of {len(runs['plugin'])} rounds, one machine")
print(f"{'scenario':<16}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU s/1000':>12}{'peak RSS MB':>13}{'errors':>8}{'steal %':>9}"
      f"{'broker CPU':>12}{'wrk CPU':>9}{'busy %':>8}")
for name, r in rows.items():
    if "throughput" in r:
        print(f"{name:<16}{float(r['throughput']):>10.0f}{float(r['p50_ms']):>9.2f}{float(r['p99_ms']):>9.2f}"
              f"{r.get('cpu_s_per_1000', '-'):>12}{r.get('peak_rss_mb', '-'):>13}{r.get('errors', '0'):>8}"
              f"{r.get('steal_pct', '-'):>9}{r.get('broker_cpu_s_per_1000', '-'):>12}{r.get('wrk_cpu_s_per_1000', '-'):>9}"
              f"{r.get('busy_pct', '-'):>8}")
for fmt, seed, order in [("protobuf", "codec", "codec_4k"), ("avro", "codec_avro", "codec_avro_4k"), ("json", "codec_json", "codec_json_4k")]:
    print(f"codec: JSON -> {fmt} of the seed's sample: {rows[seed]['ns_per_message']} ns per message; "
          f"of the 4 KB order: {float(rows[order]['ns_per_message']) / 1000:.1f} us")
ratio = lambda a, b: (float(rows[a]["throughput"]) / float(rows[b]["throughput"]), float(rows[a]["p99_ms"]) / float(rows[b]["p99_ms"]))
cpu = lambda a, b: float(rows[a]["cpu_s_per_1000"]) / float(rows[b]["cpu_s_per_1000"])
for a, b in [("plugin", "native_pubsub"), ("plugin", "ceiling"), ("plugin", "seed_pattern"), ("plugin", "producer_alone"),
             ("plugin_4k", "ceiling_4k"), ("service", "ceiling"), ("service", "plugin"), ("gateway_service", "plugin")]:
    t, p = ratio(a, b)
    gateway_cpu = f" gateway_cpu={cpu(a, b):.2f}" if "cpu_s_per_1000" in rows[b] else ""
    print(f"RATIO {a}/{b} throughput={t:.2f} p99={p:.2f}{gateway_cpu}")
# A batch request carries 50 records: compared by records per second and gateway CPU per record.
records = float(rows["plugin_batch50"]["throughput"]) * 50
per_record = float(rows["plugin_batch50"]["cpu_s_per_1000"]) / 50
print(f"RATIO plugin_batch50/plugin records={records / float(rows['plugin']['throughput']):.2f} "
      f"gateway_cpu_per_record={per_record / float(rows['plugin']['cpu_s_per_1000']):.2f} "
      f"({records:.0f} records/s in batches of 50)")
# The gateway, the broker and wrk share the machine's cores: once they are busy, throughput goes as the
# inverse of their CPU per request together. What the plugin could answer against the ceiling with its
# gateway CPU at the target (1.15x the ceiling's) and the broker's and wrk's as measured:
machine = lambda name, gateway: gateway + sum(float(rows[name][k]) for k in ("broker_cpu_s_per_1000", "wrk_cpu_s_per_1000"))
at_target = machine("ceiling", float(rows["ceiling"]["cpu_s_per_1000"])) / machine(
    "plugin", 1.15 * float(rows["ceiling"]["cpu_s_per_1000"]))
print(f"MACHINE CPU s/1000 requests (gateway + broker + wrk): ceiling={machine('ceiling', float(rows['ceiling']['cpu_s_per_1000'])):.3f} "
      f"native_pubsub={machine('native_pubsub', float(rows['native_pubsub']['cpu_s_per_1000'])):.3f} "
      f"plugin={machine('plugin', float(rows['plugin']['cpu_s_per_1000'])):.3f}; "
      f"plugin/ceiling throughput on busy cores with the gateway at 1.15x: at most {at_target:.2f}")
print(f"RSS plugin-ceiling={float(rows['plugin']['rss_mb']) - float(rows['ceiling']['rss_mb']):.1f}MB "
      f"(after the run: plugin {rows['plugin']['rss_mb']} MB, plain gateway {rows['ceiling']['rss_mb']} MB)")
PY
