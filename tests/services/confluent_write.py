"""Writes records in Confluent's wire format with confluent-kafka's own AvroSerializer or JSONSerializer,
against a real registry with Confluent's API: what the tests compare the gateway's `confluent` records to.

  confluent_write.py TOPIC < JSON values, one per line

Serializes each value (a JSON document, read as a Python object) with the latest schema of subject
TOPIC-value (Confluent's default subject name strategy), registering nothing, and prints the record as hex.
Environment: KK_CONFLUENT_URL, KK_CONFLUENT_USER, KK_CONFLUENT_PASSWORD.
"""
import json
import os
import sys

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main():
    # A request the registry leaves unanswered is retried after 10 s (httpx's default is to wait forever:
    # one such stall held a test run for 9 minutes) by the client's own retries.
    conf = {"url": os.environ["KK_CONFLUENT_URL"], "timeout": 10}
    if os.environ.get("KK_CONFLUENT_USER"):
        conf["basic.auth.user.info"] = f"{os.environ['KK_CONFLUENT_USER']}:{os.environ['KK_CONFLUENT_PASSWORD']}"
    client = SchemaRegistryClient(conf)
    topic = sys.argv[1]
    schema = client.get_latest_version(f"{topic}-value").schema
    serde = {"auto.register.schemas": False, "use.latest.version": True}
    if schema.schema_type == "AVRO":
        # the Schema, not its text: its references name other subjects' records
        write = AvroSerializer(client, schema, conf=serde)
    elif schema.schema_type == "JSON":
        write = JSONSerializer(schema, client, conf=serde)
    else:
        raise SystemExit(f"subject {topic}-value is {schema.schema_type}: this writes AVRO and JSON")
    ctx = SerializationContext(topic, MessageField.VALUE)
    for line in sys.stdin:
        if line.strip():
            print(write(json.loads(line), ctx).hex())


if __name__ == "__main__":
    main()
