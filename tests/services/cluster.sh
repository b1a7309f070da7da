#!/usr/bin/env bash
# A 3-node Apache Kafka cluster (KRaft) on 127.0.0.1 for the cluster fault suite (tests/cluster.rs), as
# production runs Kafka: replication factor 3, min.insync.replicas 2. Each node is broker and controller
# (3 voters), so that the quorum's leader can be killed too. Broker settings stay Kafka's defaults
# otherwise: broker.session.timeout.ms 9 s before the controller fences a dead broker and elects new
# leaders for its partitions. The Kafka jars are the ones `services.sh install` fetched.
# Cost, measured on the 2-core build machine: 10-18 s from start to all three serving (the three JVMs start
# together), ~380 MB resident per node idle and ~470 MB under the fault suite's load: 1.1-1.4 GB in all.
#
#   cluster.sh start | stop | status    the three nodes (a start formats fresh data; stop removes nothing)
#   cluster.sh env                      the environment a client needs (KK_CLUSTER_BOOTSTRAP, ...)
#   cluster.sh kill N                   SIGKILL node N (1-3), as a machine failure would; returns once gone
#   cluster.sh term N                   SIGTERM node N (controlled shutdown); returns once gone
#   cluster.sh freeze N                 SIGSTOP node N: a host or network lost, its connections left open
#   cluster.sh resume N                 start node N again on its data; returns once it serves
#   cluster.sh controller-leader        the node id that leads the controller quorum
#   cluster.sh topic TOPIC              a topic of 6 partitions, replication factor 3, min.insync.replicas 2
#   cluster.sh wait-isr TOPIC [SECS]    returns once every partition of TOPIC has a leader and its full ISR
#   cluster.sh describe TOPIC           each partition's leader, replicas and ISR, as Kafka's tool prints them
#
# Ports: brokers 19201-19203, controllers 19211-19213. State: $cache/state-cluster/node-N/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
state=$cache/state-cluster
nodes=(1 2 3)
broker_port() { echo $((19200 + $1)); }
controller_port() { echo $((19210 + $1)); }
bootstrap=127.0.0.1:19201,127.0.0.1:19202,127.0.0.1:19203
voters=1@127.0.0.1:19211,2@127.0.0.1:19212,3@127.0.0.1:19213

# Kafka's command-line tools, on a small heap and quick to start.
tool() { java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$here/log4j2.properties" \
  -Dkafka.logs.dir="$state/tools" -cp "$kafka_home/libs/*" "$@"; }
# The bootstrap list of the nodes that run (a tool given a dead node first waits on it).
running() {
  local n list=()
  for n in "${nodes[@]}"; do alive "$state/node-$n.pid" && list+=("127.0.0.1:$(broker_port "$n")"); done
  local IFS=,; echo "${list[*]}"
}

node_check() { [[ ${1:-} =~ ^[123]$ ]] || { echo "cluster.sh: a node is 1, 2 or 3, not '${1:-}'" >&2; exit 2; }; }

configure() { # N
  local n=$1 dir=$state/node-$1
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
listeners=PLAINTEXT://127.0.0.1:$(broker_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(broker_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.voters=$voters
log.dirs=$dir/data
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
auto.create.topics.enable=false
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
PROPS
}

# Starts node N on its data and waits until it serves (its "Kafka Server started" line: the broker is
# registered and unfenced).
launch() { # N
  local n=$1 dir=$state/node-$1 started
  started=$(grep -c "Kafka Server started" "$dir/server.log" 2>/dev/null || true)
  broker_java_opts "$dir" ""
  java_opts+=(-Dlog4j2.configurationFile="$here/log4j2.properties,$here/log4j2-cluster.properties")
  setsid nohup java "${java_opts[@]}" kafka.Kafka "$dir/server.properties" >>"$dir/stdout.log" 2>&1 &
  echo $! >"$state/node-$n.pid"
  wait_for "Kafka node $n on 127.0.0.1:$(broker_port "$n")" 120 started_more_than "$dir" "${started:-0}" || {
    tail -n 20 "$dir/stdout.log" "$dir/server.log" >&2 || true; return 1; }
}

started_more_than() { (($(grep -c "Kafka Server started" "$1/server.log" 2>/dev/null || true) > $2)); }

start() {
  local n cluster_id
  [[ -e $kafka_home/.complete ]] || { log "no Kafka jars in $kafka_home: run services.sh install"; return 1; }
  if alive "$state/node-1.pid" && alive "$state/node-2.pid" && alive "$state/node-3.pid"; then return 0; fi
  stop
  rm -rf "$state" && mkdir -p "$state/tools"
  cluster_id=$(tool kafka.tools.StorageTool random-uuid)
  for n in "${nodes[@]}"; do
    configure "$n"
    tool kafka.tools.StorageTool format -t "$cluster_id" -c "$state/node-$n/server.properties" \
      >"$state/node-$n/format.log" 2>&1
  done
  # In parallel: a node waits for a quorum before it serves.
  for n in "${nodes[@]}"; do launch "$n" & done
  for n in "${nodes[@]}"; do wait -n || { log "the Kafka cluster did not start"; return 1; }; done
  log "Kafka $kafka_version cluster on $bootstrap"
}

# A frozen node is woken first, or it would take stop_one's SIGKILL.
stop() {
  local n
  for n in "${nodes[@]}"; do alive "$state/node-$n.pid" && kill -CONT -- "-$(cat "$state/node-$n.pid")" 2>/dev/null || true; done
  for n in "${nodes[@]}"; do stop_one "$state/node-$n.pid"; done
}

# SIGKILL (kill) or SIGTERM (term, Kafka's controlled shutdown) to node N; returns once it is gone.
signal() { # SIGNAL N
  local pidfile=$state/node-$2.pid pid
  alive "$pidfile" || { log "Kafka node $2 is not running"; return 1; }
  pid=$(cat "$pidfile")
  kill "-$1" -- "-$pid" 2>/dev/null || kill "-$1" "$pid"
  while alive "$pidfile"; do sleep 0.05; done
}

controller_leader() {
  tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$(running)" describe --status 2>/dev/null |
    awk '$1 == "LeaderId:" {print $2}'
}

topic() { # TOPIC
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(running)" --create --topic "$1" --partitions 6 \
    --replication-factor 3 --config min.insync.replicas=2 >/dev/null
  wait_isr "$1" 60
}

describe() { # TOPIC
  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(running)" --describe --topic "$1" 2>/dev/null
}

# Every partition listed, each with a leader and as many replicas in sync as it has.
full_isr() { # TOPIC
  describe "$1" | awk '
    $1 == "Topic:" && $3 == "Partition:" {
      partitions++
      for (i = 1; i < NF; i++) { if ($i == "Leader:") leader = $(i + 1); if ($i == "Replicas:") r = $(i + 1); if ($i == "Isr:") isr = $(i + 1) }
      if (leader == "none" || leader < 0 || split(r, a, ",") != split(isr, b, ",")) bad++
    }
    END { exit !(partitions > 0 && bad == 0) }'
}

wait_isr() { # TOPIC SECS
  wait_for "the full ISR of every partition of $1" "${2:-90}" full_isr "$1" || { describe "$1" >&2; return 1; }
}

print_env() {
  cat <<ENV
export KK_CLUSTER_BOOTSTRAP=$bootstrap
export KK_CLUSTER_LOGS=$state
ENV
}

cmd=${1:-}
case $cmd in
  start) start ;;
  stop) stop ;;
  status) for n in "${nodes[@]}"; do alive "$state/node-$n.pid" && echo "node $n: running" || echo "node $n: stopped"; done ;;
  env) print_env ;;
  kill) node_check "${2:-}"; signal KILL "$2" ;;
  term) node_check "${2:-}"; signal TERM "$2" ;;
  freeze) node_check "${2:-}"; alive "$state/node-$2.pid" && kill -STOP -- "-$(cat "$state/node-$2.pid")" ;;
  resume) node_check "${2:-}"; alive "$state/node-$2.pid" || launch "$2" ;;
  controller-leader) controller_leader ;;
  topic) topic "${2:?cluster.sh topic TOPIC}" ;;
  wait-isr) wait_isr "${2:?cluster.sh wait-isr TOPIC [SECS]}" "${3:-90}" ;;
  describe) describe "${2:?cluster.sh describe TOPIC}" ;;
  *) echo "usage: cluster.sh start|stop|status|env | kill|term|freeze|resume N | controller-leader | topic|wait-isr|describe TOPIC" >&2; exit 2 ;;
esac
