# Sourced by the services' scripts (services.sh, cluster.sh): where the heavy files are, and how a service
# is started, waited for and stopped. $here is the folder of the scripts.

cache=${KK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/krakend-kafka}
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
kafka_home=$cache/kafka-$kafka_version

log() { echo "services: $*" >&2; }

# Running: a zombie nobody reaped yet (a SIGKILLed broker's) is not.
alive() { [[ -s $1 && -e /proc/$(cat "$1") && $(awk '{print $3}' "/proc/$(cat "$1")/stat" 2>/dev/null) != Z ]]; }

wait_for() { # what, seconds, command...
  local what=$1 secs=$2; shift 2
  for ((i = 0; i < secs * 4; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "$what did not come up within ${secs}s"
  return 1
}

# SIGTERM to the service's process group, SIGKILL after 30 s.
stop_one() { # pidfile
  alive "$1" || { rm -f "$1"; return 0; }
  local pid; pid=$(cat "$1")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 120; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$1"
}

# java_opts: a broker's JVM options, its logs (tests/services/log4j2.properties) in DIR, its class path
# Kafka's jars and CLASSES.
broker_java_opts() { # DIR CLASSES
  java_opts=(-Xms256m -Xmx1g -Dkafka.logs.dir="$1" -Dlog4j2.configurationFile="$here/log4j2.properties"
    -cp "$kafka_home/libs/*:$2")
}
