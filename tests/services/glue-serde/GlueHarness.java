// AWS's own Glue Schema Registry serde (software.amazon.glue:schema-registry-serde) on the command line, the
// reference the tests hold krakend-kafka's `glue` wire format to.
//
//   GlueHarness serialize --registry R --schema NAME --type TYPE --json JSON --uuid UUID [--compression none|zlib]
//       the record AWS's serializer writes for the message (JSON, by protobuf-java's JsonFormat) of TYPE in the
//       schema's latest version, naming schema version UUID; as hex on stdout
//   GlueHarness serialize --format avro|json --registry R --schema NAME --json JSON --uuid UUID
//       the same for an Avro schema (JSON in Avro's own JSON encoding, read by Avro's JsonDecoder into a
//       GenericRecord) or a JSON Schema (the JSON as a JsonDataWithSchema)
//   GlueHarness deserialize
//       reads records (hex, one per line) from stdin and deserializes each with GlueSchemaRegistryKafkaDeserializer:
//       prints, for a protobuf DynamicMessage, its full type name, a tab, and the message as JSON; for an Avro
//       GenericRecord, "avro", a tab, and the record as Avro's toString writes it; for JSON, "json", a tab, and
//       the payload
//
// Environment: AWS_REGION, KK_GLUE_ENDPOINT (the Glue emulator), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
package krakendkafka.test;

import com.amazonaws.services.schemaregistry.deserializers.GlueSchemaRegistryKafkaDeserializer;
import com.amazonaws.services.schemaregistry.deserializers.protobuf.ProtobufSchemaParser;
import com.amazonaws.services.schemaregistry.serializers.GlueSchemaRegistrySerializationFacade;
import com.amazonaws.services.schemaregistry.serializers.json.JsonDataWithSchema;
import com.amazonaws.services.schemaregistry.serializers.protobuf.MessageIndexFinder;
import com.amazonaws.services.schemaregistry.utils.AWSSchemaRegistryConstants;
import com.amazonaws.services.schemaregistry.utils.AvroRecordType;
import com.amazonaws.services.schemaregistry.utils.ProtobufMessageType;
import com.google.protobuf.Descriptors;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.DecoderFactory;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.glue.GlueClient;
import software.amazon.awssdk.services.glue.model.DataFormat;
import software.amazon.awssdk.services.glue.model.GetSchemaVersionResponse;
import software.amazon.awssdk.services.glue.model.SchemaId;
import software.amazon.awssdk.services.glue.model.SchemaVersionNumber;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.UUID;

public final class GlueHarness {
    private static final HexFormat HEX = HexFormat.of();

    public static void main(String[] argv) throws Exception {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel",
            System.getProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn"));
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        if (argv.length == 0) {
            usage();
        }
        Args a = new Args(argv);
        try {
            switch (argv[0]) {
                case "serialize": serialize(a); break;
                case "deserialize": deserialize(a); break;
                default: usage();
            }
        } catch (Exception e) {
            System.err.println("glue-harness: " + e);
            for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                System.err.println("  caused by: " + c);
            }
            System.exit(1);
        }
    }

    private static void usage() {
        System.err.println("usage: GlueHarness serialize [--format protobuf|avro|json] --registry R --schema N"
            + " [--type T] --json J --uuid U [--compression none|zlib] | deserialize");
        System.exit(2);
    }

    // ---- configuration -------------------------------------------------------------------------

    private static String region(Args a) {
        return a.opt("--region", envOr("AWS_REGION", envOr("AWS_DEFAULT_REGION", "eu-central-1")));
    }

    private static String endpoint(Args a) {
        return a.opt("--endpoint", envOr("KK_GLUE_ENDPOINT", System.getenv("AWS_ENDPOINT_URL_GLUE")));
    }

    private static String envOr(String name, String dflt) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? dflt : v;
    }

    /** The serde's configuration map; the keys are AWSSchemaRegistryConstants'. */
    private static Map<String, Object> serdeConfig(Args a) {
        Map<String, Object> c = new HashMap<>();
        c.put(AWSSchemaRegistryConstants.AWS_REGION, region(a));                       // "region"
        String ep = endpoint(a);
        if (ep != null) {
            c.put(AWSSchemaRegistryConstants.AWS_ENDPOINT, ep);                        // "endpoint"
        }
        if (a.opt("--registry", null) != null) {
            c.put(AWSSchemaRegistryConstants.REGISTRY_NAME, a.opt("--registry", null)); // "registry.name"
        }
        if (a.opt("--schema", null) != null) {
            c.put(AWSSchemaRegistryConstants.SCHEMA_NAME, a.opt("--schema", null));    // "schemaName"
        }
        c.put(AWSSchemaRegistryConstants.DATA_FORMAT, format(a).name());               // "dataFormat"
        c.put(AWSSchemaRegistryConstants.AVRO_RECORD_TYPE,                            // "avroRecordType"
            AvroRecordType.GENERIC_RECORD.getName());
        c.put(AWSSchemaRegistryConstants.COMPRESSION_TYPE,                            // "compression": NONE|ZLIB
            a.opt("--compression", "none").toUpperCase());
        c.put(AWSSchemaRegistryConstants.PROTOBUF_MESSAGE_TYPE,                       // "protobufMessageType"
            ProtobufMessageType.DYNAMIC_MESSAGE.getName());
        return c;
    }

    private static DataFormat format(Args a) {
        return DataFormat.valueOf(a.opt("--format", "protobuf").toUpperCase());
    }

    private static GlueClient glue(Args a) {
        var b = GlueClient.builder().region(Region.of(region(a)))
            .credentialsProvider(DefaultCredentialsProvider.create());
        String ep = endpoint(a);
        if (ep != null) {
            b.endpointOverride(URI.create(ep));
        }
        return b.build();
    }

    // ---- serialize -----------------------------------------------------------------------------

    private static void serialize(Args a) throws Exception {
        String registry = a.req("--registry");
        String schemaName = a.req("--schema");
        String definition;
        try (GlueClient g = glue(a)) {
            GetSchemaVersionResponse v = g.getSchemaVersion(r -> r
                .schemaId(SchemaId.builder().registryName(registry).schemaName(schemaName).build())
                .schemaVersionNumber(SchemaVersionNumber.builder().latestVersion(true).build()));
            definition = v.schemaDefinition();
        }
        GlueSchemaRegistrySerializationFacade facade = GlueSchemaRegistrySerializationFacade.builder()
            .configs(serdeConfig(a)).credentialProvider(DefaultCredentialsProvider.create()).build();
        UUID uuid = UUID.fromString(a.req("--uuid"));
        if (format(a) == DataFormat.AVRO) {
            Schema schema = new Schema.Parser().parse(definition);
            GenericRecord record = new GenericDatumReader<GenericRecord>(schema)
                .read(null, DecoderFactory.get().jsonDecoder(schema, a.req("--json")));
            System.out.println(HEX.formatHex(facade.serialize(DataFormat.AVRO, record, uuid)));
            return;
        }
        if (format(a) == DataFormat.JSON) {
            JsonDataWithSchema data = JsonDataWithSchema.builder(definition, a.req("--json")).build();
            System.out.println(HEX.formatHex(facade.serialize(DataFormat.JSON, data, uuid)));
            return;
        }
        // The parser AWS's deserializer uses, so the descriptors (map entries included) are the ones it sees.
        Descriptors.FileDescriptor file = ProtobufSchemaParser.parse(definition, schemaName + ".proto");
        Descriptors.Descriptor type = null;
        for (Descriptors.Descriptor d : new MessageIndexFinder().getAll(file).keySet()) {
            if (d.getFullName().equals(a.req("--type"))) {
                type = d;
            }
        }
        if (type == null) {
            throw new IllegalArgumentException("no message type " + a.req("--type") + " in the schema");
        }
        DynamicMessage.Builder builder = DynamicMessage.newBuilder(type);
        JsonFormat.parser().merge(a.req("--json"), builder);
        byte[] record = facade.serialize(DataFormat.PROTOBUF, builder.build(), uuid);
        System.out.println(HEX.formatHex(record));
    }

    // ---- deserialize ---------------------------------------------------------------------------

    private static void deserialize(Args a) throws Exception {
        String text = new String(System.in.readAllBytes(), StandardCharsets.US_ASCII);
        JsonFormat.Printer printer = JsonFormat.printer().omittingInsignificantWhitespace();
        try (var de = new GlueSchemaRegistryKafkaDeserializer(DefaultCredentialsProvider.create(), serdeConfig(a))) {
            for (String line : text.split("\n")) {
                if (line.isBlank()) {
                    continue;
                }
                Object read = de.deserialize("krakend-kafka", HEX.parseHex(line.strip()));
                if (read instanceof Message m) {
                    System.out.println(m.getDescriptorForType().getFullName() + "\t" + printer.print(m));
                } else if (read instanceof GenericRecord r) {
                    System.out.println("avro\t" + r);
                } else if (read instanceof JsonDataWithSchema j) {
                    System.out.println("json\t" + j.getPayload());
                } else {
                    throw new IllegalStateException("the deserializer gave a " + read.getClass());
                }
            }
        }
    }

    // ---- arguments -----------------------------------------------------------------------------

    private static final class Args {
        private final Map<String, String> opts = new HashMap<>();

        Args(String[] argv) {
            for (int i = 1; i < argv.length; i++) {
                String s = argv[i];
                if (s.startsWith("--") && s.length() > 2) {
                    if (i + 1 < argv.length) {
                        opts.put(s, argv[++i]);
                    } else {
                        throw new IllegalArgumentException(s + " needs a value");
                    }
                } else {
                    throw new IllegalArgumentException("unexpected argument " + s);
                }
            }
        }

        String opt(String k, String dflt) { return opts.getOrDefault(k, dflt); }
        String req(String k) {
            String v = opts.get(k);
            if (v == null) throw new IllegalArgumentException(k + " is required");
            return v;
        }
    }
}
