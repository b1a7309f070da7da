"""Reads records written in Confluent's wire format with confluent-kafka's own deserializers, against a
real registry with Confluent's API: the reference the tests hold the `confluent` wire format to.

  confluent_read.py < hex records, one per line

Prints, per record: for a protobuf schema, the full name of the message type the record's message indexes
name (found by confluent-kafka's ProtobufDeserializer from the writer's schema, fetched by the id in the
record), a tab, and the message as JSON; for an Avro schema (AvroDeserializer) "avro", for a JSON Schema
(JSONDeserializer) "json", a tab, and the value read as compact JSON with sorted keys (bytes as base64,
decimals, times and UUIDs as strings). Environment: KK_CONFLUENT_URL, KK_CONFLUENT_USER,
KK_CONFLUENT_PASSWORD.

confluent-kafka's protobuf serdes ask the registry for schemas as `?format=serialized` (a base64
FileDescriptorProto), which Confluent's registry answers and Apicurio's compatible API does not (3.3:
HTTP 500 for a schema with a package). TextRegistryClient asks for the .proto text and compiles it with
protoc (grpcio-tools) as Confluent's registry would; all else (framing, schema by id, references
through the registry, message indexes) is confluent-kafka's.
"""
import base64
import json
import os
import sys
import tempfile

import grpc_tools
from confluent_kafka.schema_registry import RegisteredSchema, Schema, SchemaRegistryClient, dual_schema_id_deserializer
from confluent_kafka.schema_registry.common.serde import SchemaId
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message_factory import GetMessageClass
from grpc_tools import protoc

WELL_KNOWN = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
MAIN = "main.proto"


class TextRegistryClient(SchemaRegistryClient):
    def _files(self, schema, name, out):
        """The schema and every schema it references, as {import name: .proto text}."""
        out[name] = schema.schema_str
        for ref in schema.references or []:
            if ref.name not in out:
                self._files(super().get_version(ref.subject, ref.version, True, None).schema, ref.name, out)
        return out

    def compile(self, schema):
        files = self._files(schema, MAIN, {})
        with tempfile.TemporaryDirectory() as d:
            for name, text in files.items():
                os.makedirs(os.path.dirname(os.path.join(d, name)), exist_ok=True)
                with open(os.path.join(d, name), "w") as f:
                    f.write(text)
            out = os.path.join(d, "set.pb")
            args = ["protoc", f"-I{d}", f"-I{WELL_KNOWN}", "--include_imports", f"--descriptor_set_out={out}", MAIN]
            if protoc.main(args) != 0:
                raise ValueError("protoc refused the registry's schema")
            files = descriptor_pb2.FileDescriptorSet()
            with open(out, "rb") as f:
                files.ParseFromString(f.read())
        return files

    def _serialized(self, schema):
        main = next(f for f in self.compile(schema).file if f.name == MAIN)
        return Schema(base64.standard_b64encode(main.SerializeToString()).decode(), "PROTOBUF", schema.references)

    def get_schema(self, schema_id, subject_name=None, fmt=None, reference_format=None):
        schema = super().get_schema(schema_id, subject_name, None, reference_format)
        return self._serialized(schema) if fmt == "serialized" else schema

    def get_version(self, subject_name, version="latest", deleted=False, fmt=None):
        r = super().get_version(subject_name, version, deleted, None)
        if fmt != "serialized":
            return r
        return RegisteredSchema(schema_id=r.schema_id, guid=r.guid, schema=self._serialized(r.schema),
                                subject=r.subject, version=r.version)

    def get_latest_version(self, subject_name, fmt=None):
        return self.get_version(subject_name, "latest", False, fmt)


def plain(value):
    """What json.dumps cannot write, as the tests spell it."""
    if isinstance(value, bytes):
        return base64.standard_b64encode(value).decode()
    return str(value)


def read(client, record):
    ctx = SerializationContext("krakend-kafka", MessageField.VALUE)
    schema_type = client.get_schema(int.from_bytes(record[1:5], "big")).schema_type
    if schema_type in ("AVRO", "JSON"):
        read = AvroDeserializer(client) if schema_type == "AVRO" else JSONDeserializer(None, schema_registry_client=client)
        value = json.dumps(read(record, ctx), separators=(",", ":"), sort_keys=True, default=plain)
        return schema_type.lower(), value
    # The writer's message type, as confluent-kafka's deserializer finds it from the record's header.
    schema_id = SchemaId("PROTOBUF")
    dual_schema_id_deserializer(record, ctx, schema_id)
    pool = DescriptorPool()
    for f in client.compile(client.get_schema(schema_id.id)).file:
        pool.Add(f)
    main = pool.FindFileByName(MAIN)
    # a deserializer needs a class to be made; its lookup of the indexes does not depend on which
    any_class = GetMessageClass(next(iter(main.message_types_by_name.values())))
    lookup = ProtobufDeserializer(any_class, {}, client)
    desc = lookup._get_message_desc(pool, main, schema_id.message_indexes)
    message = ProtobufDeserializer(GetMessageClass(desc), {}, client)(record, ctx)
    return desc.full_name, json.dumps(json_format.MessageToDict(message), separators=(",", ":"), sort_keys=True)


def main():
    # A request the registry leaves unanswered is retried after 10 s (httpx's default is to wait forever:
    # one such stall held a test run for 9 minutes) by the client's own retries.
    conf = {"url": os.environ["KK_CONFLUENT_URL"], "timeout": 10}
    if os.environ.get("KK_CONFLUENT_USER"):
        conf["basic.auth.user.info"] = f"{os.environ['KK_CONFLUENT_USER']}:{os.environ['KK_CONFLUENT_PASSWORD']}"
    client = TextRegistryClient(conf)
    for line in sys.stdin:
        if line.strip():
            name, message = read(client, bytes.fromhex(line.strip()))
            print(f"{name}\t{message}")


if __name__ == "__main__":
    main()
