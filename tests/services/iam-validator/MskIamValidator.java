package krakendkafka.test;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;
import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallback;

/**
 * The test broker's stand-in for MSK's IAM check: it accepts an OAUTHBEARER token only if it is a
 * SigV4-presigned kafka-cluster:Connect URL, unexpired, for the access key the listener's JAAS options
 * name, whose signature it recomputes with that key's secret. A token signed with any other secret fails.
 */
public class MskIamValidator implements AuthenticateCallbackHandler {
    private static final DateTimeFormatter AMZ_DATE =
            DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'").withZone(ZoneOffset.UTC);
    private String accessKey;
    private String secretKey;
    /** When set, a token is valid this long after it was signed, if less than it says: as one signed with
     *  short-lived credentials is on MSK. */
    private Long maxAgeSeconds;
    /** When set, each authentication's verdict is appended to this file, a line each:
     *  "accepted|refused <X-Amz-Date or -> <why>", so a test can count authentications and tokens. */
    private java.nio.file.Path trail;

    @Override
    public void configure(Map<String, ?> configs, String mechanism, List<AppConfigurationEntry> jaas) {
        Map<String, ?> options = jaas.get(0).getOptions();
        accessKey = (String) options.get("accessKey");
        secretKey = (String) options.get("secretKey");
        Object maxAge = options.get("maxAgeSeconds");
        maxAgeSeconds = maxAge == null ? null : Long.valueOf((String) maxAge);
        Object trailFile = options.get("trail");
        trail = trailFile == null ? null : java.nio.file.Paths.get((String) trailFile);
    }

    @Override
    public void handle(Callback[] callbacks) throws UnsupportedCallbackException {
        for (Callback callback : callbacks) {
            if (!(callback instanceof OAuthBearerValidatorCallback)) {
                throw new UnsupportedCallbackException(callback);
            }
            OAuthBearerValidatorCallback validation = (OAuthBearerValidatorCallback) callback;
            try {
                Token token = validate(validation.tokenValue());
                validation.token(token);
                record("accepted " + AMZ_DATE.format(Instant.ofEpochMilli(token.startTimeMs())) + " ok");
            } catch (Exception e) {
                validation.error("invalid_token", null, null);
                record("refused - " + e.getMessage());
            }
        }
    }

    private Token validate(String token) throws Exception {
        String url = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
        String prefix = "https://";
        int path = url.indexOf("/?");
        require(url.startsWith(prefix) && path > 0, "not a presigned URL");
        String host = url.substring(prefix.length(), path);
        TreeMap<String, String> query = new TreeMap<>();
        for (String pair : url.substring(path + 2).split("&")) {
            String[] kv = pair.split("=", 2);
            query.put(decode(kv[0]), decode(kv.length > 1 ? kv[1] : ""));
        }
        require("kafka-cluster:Connect".equals(query.get("Action")), "action");
        require("AWS4-HMAC-SHA256".equals(query.get("X-Amz-Algorithm")), "algorithm");
        require("host".equals(query.get("X-Amz-SignedHeaders")), "signed headers");
        String[] scope = query.get("X-Amz-Credential").split("/");
        require(scope.length == 5 && scope[0].equals(accessKey) && scope[3].equals("kafka-cluster"), "credential");
        require(host.equals("kafka." + scope[2] + ".amazonaws.com"), "host");
        Instant signedAt = Instant.from(AMZ_DATE.parse(query.get("X-Amz-Date")));
        long expiresAt = signedAt.plusSeconds(Long.parseLong(query.get("X-Amz-Expires"))).toEpochMilli();
        if (maxAgeSeconds != null) {
            expiresAt = Math.min(expiresAt, signedAt.plusSeconds(maxAgeSeconds).toEpochMilli());
        }
        require(System.currentTimeMillis() < expiresAt, "expired");

        StringBuilder canonicalQuery = new StringBuilder();
        for (Map.Entry<String, String> e : query.entrySet()) {
            if (e.getKey().equals("X-Amz-Signature") || e.getKey().equals("User-Agent")) {
                continue; // the signature itself, and what was added after signing
            }
            if (canonicalQuery.length() > 0) {
                canonicalQuery.append('&');
            }
            canonicalQuery.append(encode(e.getKey())).append('=').append(encode(e.getValue()));
        }
        String canonicalRequest = "GET\n/\n" + canonicalQuery + "\nhost:" + host + "\n\nhost\n" + sha256Hex("");
        String credentialScope = String.join("/", scope[1], scope[2], scope[3], scope[4]);
        String stringToSign = "AWS4-HMAC-SHA256\n" + query.get("X-Amz-Date") + "\n" + credentialScope + "\n"
                + sha256Hex(canonicalRequest);
        byte[] key = hmac(("AWS4" + secretKey).getBytes(StandardCharsets.UTF_8), scope[1]);
        key = hmac(hmac(hmac(key, scope[2]), scope[3]), scope[4]);
        String expected = hex(hmac(key, stringToSign));
        require(MessageDigest.isEqual(expected.getBytes(StandardCharsets.UTF_8),
                query.get("X-Amz-Signature").getBytes(StandardCharsets.UTF_8)), "signature");
        return new Token(token, accessKey, signedAt.toEpochMilli(), expiresAt);
    }

    private synchronized void record(String line) {
        if (trail == null) {
            return;
        }
        try {
            java.nio.file.Files.write(trail, (line + "\n").getBytes(StandardCharsets.UTF_8),
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static void require(boolean ok, String what) {
        if (!ok) {
            throw new IllegalArgumentException(what);
        }
    }

    private static String decode(String s) throws Exception {
        return java.net.URLDecoder.decode(s, StandardCharsets.UTF_8);
    }

    /** SigV4's URI encoding: RFC 3986 unreserved characters stay, every other byte is %XX. */
    private static String encode(String s) {
        StringBuilder out = new StringBuilder();
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
            char c = (char) (b & 0xff);
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '_' || c == '.' || c == '~') {
                out.append(c);
            } else {
                out.append(String.format("%%%02X", b & 0xff));
            }
        }
        return out.toString();
    }

    private static byte[] hmac(byte[] key, String data) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
    }

    private static String sha256Hex(String data) throws Exception {
        return hex(MessageDigest.getInstance("SHA-256").digest(data.getBytes(StandardCharsets.UTF_8)));
    }

    private static String hex(byte[] bytes) {
        StringBuilder out = new StringBuilder();
        for (byte b : bytes) {
            out.append(String.format("%02x", b));
        }
        return out.toString();
    }

    @Override
    public void close() {}

    private static final class Token implements OAuthBearerToken {
        private final String value;
        private final String principal;
        private final long start;
        private final long lifetime;

        Token(String value, String principal, long start, long lifetime) {
            this.value = value;
            this.principal = principal;
            this.start = start;
            this.lifetime = lifetime;
        }

        public String value() { return value; }
        public Set<String> scope() { return Collections.emptySet(); }
        public long lifetimeMs() { return lifetime; }
        public String principalName() { return principal; }
        public Long startTimeMs() { return start; }
    }
}
