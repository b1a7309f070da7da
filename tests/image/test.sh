#!/usr/bin/env bash
# Runs a built image without a container engine: unpacks its layers, mounts (copies) a test config into
# it as a user would mount one, starts the image's own entrypoint (the gateway with the plugin, or the
# service) in a chroot as the image's user, publishes through it to the test Kafka and reads the record
# back.
#   tests/image/test.sh build/krakend-kafka.oci.tar           (with the test services' environment)
#   tests/image/test.sh build/krakend-kafka-service.oci.tar
set -euo pipefail
archive=$(realpath "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
gateway=
cleanup() { [[ -n $gateway ]] && kill "$gateway" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# An OCI archive: index.json -> manifest -> config (user, entrypoint) and gzip layers, applied in order.
python3 - "$archive" "$work" <<'PY'
import json, sys, tarfile, io
archive, work = sys.argv[1], sys.argv[2]
with tarfile.open(archive) as oci:
    blob = lambda d: oci.extractfile("blobs/" + d.replace(":", "/")).read()
    index = json.loads(oci.extractfile("index.json").read())
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))["config"]
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))) as t:
            t.extractall(work + "/rootfs", filter="tar")
    json.dump(config, open(work + "/config.json", "w"))
PY
read -r user entrypoint < <(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["User"], " ".join(c["Entrypoint"]))' "$work/config.json")
size=$(du -sm "$work/rootfs" | cut -f1)
echo "image: user $user, entrypoint '$entrypoint', ${size} MB unpacked"
[[ $user == 1000:1000 ]] || { echo "the image runs as $user, not 1000:1000" >&2; exit 1; }
# The test config: the image's own, but on loopback and another port (a mounted config).
case $entrypoint in
  "/usr/bin/krakend run -c")
    config=/etc/krakend/krakend.json started="Total plugins loaded: 1"
    edit='cfg.update(listen_ip="127.0.0.1", port=18180)' ;;
  "/usr/bin/krakend-kafka serve -c")
    config=/etc/krakend-kafka/service.json started="serving on http://127.0.0.1:18180"
    edit='cfg.update(listen="127.0.0.1:18180")' ;;
  *) echo "unexpected entrypoint '$entrypoint'" >&2; exit 1 ;;
esac
python3 -c "import json, sys; cfg = json.load(open(sys.argv[1])); $edit; json.dump(cfg, open(sys.argv[1], 'w'))" \
  "$work/rootfs$config"
"$root/tests/services/services.sh" example test
log=$work/entrypoint.log
# The image's settings come from the environment, as `docker run -e` gives them.
env -i SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt KAFKA_BOOTSTRAP_SERVERS="$KK_BOOTSTRAP_SERVERS" \
  GLUE_REGISTRY_NAME=krakend-kafka REGION=eu-central-1 AWS_ENDPOINT_URL_GLUE="$KK_GLUE_ENDPOINT" \
  AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  "$(command -v chroot)" --userspec="$user" "$work/rootfs" $entrypoint "$config" >"$log" 2>&1 &
gateway=$!
for ((i = 0; i < 120; i++)); do curl -sf http://127.0.0.1:18180/__health >/dev/null && break; sleep 0.25; done
grep -q "$started" "$log" || { echo "the image did not log '$started'" >&2; cat "$log" >&2; exit 1; }
[[ $(ps -o uid= -p "$(pgrep -P $gateway || echo $gateway)" | tr -d ' ') == 1000 ]] || { echo "not running as uid 1000" >&2; exit 1; }

message="from the image $(date +%s%N)"
answer=$(curl -s -w ' %{http_code}' http://127.0.0.1:18180/v1/event/example-events -H 'Message-Key: image-test' \
  -H 'Message-Headers: origin=image' -d "{\"some_message\":\"$message\"}")
echo "answer: $answer"
[[ $answer == *'"statusCode":"200"'*' 200' ]] || { cat "$log" >&2; exit 1; }
records=$("$root/tests/services/services.sh" consume test example-events)
# The value is protobuf: its first byte (field 1, length-delimited) is 0x0a, a newline in this output.
[[ $records == *$'origin:image\timage-test\t\n'*"$message"* ]] ||
  { echo "the record is not on the topic; it holds:" >&2; cat -A <<<"$records" >&2; exit 1; }
echo "1 passed, 0 failed"
