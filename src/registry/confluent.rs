//! Schemas from a registry with Confluent Schema Registry's REST API: a subject's version, and the
//! schemas it references (its imports), each by its own subject and version.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::config::{ConfluentRegistry, SubjectNameStrategy};
use crate::format::wire::VersionId;
use crate::rate::TokenBucket;
use crate::registry::source::{FetchError, SchemaSource, SchemaText};
use crate::telemetry::log;

/// More imports than a schema has: a reference cycle or a runaway chain stops here.
const MAX_REFERENCES: usize = 100;
/// The most read from the registry for one schema, its imports' answers included: far above any schema,
/// far below what would hurt the gateway (a registry, or whatever answers at its URL, may send without
/// end).
const MAX_SCHEMA_BYTES: usize = 8 << 20;
/// Of an error's answer, what the log shows.
const MAX_LOGGED_BYTES: usize = 1024;

pub struct Confluent {
    client: reqwest::Client,
    url: Url,
    strategy: SubjectNameStrategy,
    /// The process's registry call budget: the cache takes a call for a schema, each reference it
    /// imports takes one more here.
    calls: Arc<TokenBucket>,
}

/// A subject's version as the registry answers it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubjectVersion {
    id: u32,
    schema: String,
    /// Left out for Avro, the registry's default.
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
}

#[derive(Deserialize)]
struct Reference {
    /// The name the schema imports it by.
    name: String,
    subject: String,
    version: i64,
}

impl Confluent {
    /// A client of the registry `config` names, whose calls end within `timeout` and spend `calls`.
    /// Reads the CA file.
    pub fn new(config: &ConfluentRegistry, timeout: Duration, calls: Arc<TokenBucket>) -> Result<Confluent, String> {
        let key = "config key confluent_registry";
        let url = Url::parse(&config.url).map_err(|e| format!("{key}.url: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{key}.url: put the credentials in username and password, not in the URL"));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        let authorization = match (&config.username, &config.password, &config.bearer_token) {
            (Some(user), Some(password), _) => {
                use base64::Engine;
                let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {pair}"))
            }
            (_, _, Some(token)) => Some(format!("Bearer {token}")),
            _ => None,
        };
        if let Some(value) = authorization {
            let mut value = reqwest::header::HeaderValue::from_str(&value)
                .map_err(|_| format!("{key}: the credentials hold characters an HTTP header cannot"))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .no_proxy();
        if let Some(path) = &config.ca_location {
            let pem = std::fs::read(path).map_err(|e| format!("{key}.ca_location: {path}: {e}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| format!("{key}.ca_location: {path}: no PEM certificate in it"))?;
            builder = builder.tls_certs_only(certs);
        }
        let client = builder.build().map_err(|e| format!("{key}: {e}"))?;
        Ok(Confluent { client, url, strategy: config.subject_name_strategy, calls })
    }

    /// `subject`'s `version` ("latest" or a number), read within the `left` bytes of its schema's budget.
    async fn version(&self, subject: &str, version: &str, left: &mut usize) -> Result<SubjectVersion, FetchError> {
        let mut url = self.url.clone();
        url.path_segments_mut()
            .map_err(|()| FetchError::Unavailable("its URL cannot hold a path".into()))?
            .pop_if_empty()
            .extend(["subjects", subject, "versions", version]);
        let unavailable = |why: &str, detail: &dyn std::fmt::Display| {
            log::once(
                &format!("confluent {} {why}", self.url),
                format_args!("schema registry {}: {why}: {detail}", self.url),
            );
            FetchError::Unavailable(format!("the schema registry is unavailable ({why})"))
        };
        let answer = self.client.get(url).header("Accept", "application/vnd.schemaregistry.v1+json").send().await;
        let answer = answer.map_err(|e| {
            let chain = error_chain(&e);
            unavailable(why(&e, &chain), &chain)
        })?;
        match answer.status() {
            StatusCode::OK => {
                let body = bounded(answer, *left).await.map_err(|e| unavailable(&e, &e))?;
                *left -= body.len();
                serde_json::from_slice(&body).map_err(|e| unavailable("its answer could not be read", &e))
            }
            StatusCode::NOT_FOUND => Err(FetchError::NotFound(match version {
                "latest" => format!("no subject {subject} in the schema registry"),
                n => format!("no version {n} of subject {subject} in the schema registry"),
            })),
            StatusCode::UNAUTHORIZED => Err(unavailable("authentication failed", &"HTTP 401")),
            StatusCode::FORBIDDEN => Err(unavailable("access denied", &"HTTP 403")),
            status => {
                let body = first_bytes(answer, MAX_LOGGED_BYTES).await;
                Err(unavailable(&format!("it answered HTTP {}", status.as_u16()), &String::from_utf8_lossy(&body)))
            }
        }
    }
}

impl SchemaSource for Confluent {
    fn default_name(&self, topic: &str, message_type: Option<&str>) -> Result<String, String> {
        let record = || {
            message_type.ok_or_else(|| {
                format!("topic {topic}: the record-name subject_name_strategy needs topics.{topic}.message_type")
            })
        };
        Ok(match self.strategy {
            SubjectNameStrategy::TopicName => format!("{topic}-value"),
            SubjectNameStrategy::RecordName => record()?.to_owned(),
            SubjectNameStrategy::TopicRecordName => format!("{topic}-{}", record()?),
        })
    }

    async fn fetch(&self, subject: &str, version: Option<i64>) -> Result<SchemaText, FetchError> {
        let version = version.map_or_else(|| "latest".to_owned(), |n| n.to_string());
        let mut left = MAX_SCHEMA_BYTES;
        let top = self.version(subject, &version, &mut left).await?;
        // Each referenced file once, however many schemas import it.
        let mut imports = Vec::new();
        let mut seen = HashSet::new();
        let mut pending: Vec<Reference> = top.references;
        while let Some(reference) = pending.pop() {
            if !seen.insert(reference.name.clone()) {
                continue;
            }
            if seen.len() > MAX_REFERENCES {
                return Err(FetchError::Refused(format!(
                    "subject {subject}: imports more than {MAX_REFERENCES} schemas, more than the gateway follows"
                )));
            }
            self.calls.take_waiting().await;
            let found = self.version(&reference.subject, &reference.version.to_string(), &mut left).await.map_err(
                |e| match e {
                    FetchError::NotFound(why) => {
                        FetchError::NotFound(format!("subject {subject}: its reference {}: {why}", reference.name))
                    }
                    unavailable => unavailable,
                },
            )?;
            pending.extend(found.references);
            imports.push((reference.name, found.schema));
        }
        Ok(SchemaText {
            definition: top.schema,
            data_format: top.schema_type.unwrap_or_else(|| "AVRO".into()),
            id: Some(VersionId::Confluent(top.id)),
            imports,
        })
    }
}

/// The body of `answer`, read up to `limit` bytes: the registry's answer, or why it cannot be used.
async fn bounded(mut answer: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let too_large = || format!("its answer is larger than {limit} bytes");
    if answer.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|_| "its answer could not be read".to_owned())? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first `limit` bytes of `answer`'s body (what could be read of them), for the log.
async fn first_bytes(mut answer: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = answer.chunk().await {
        body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]);
        if body.len() == limit {
            break;
        }
    }
    body
}

/// What a caller is told of a failed call, in a few words; the whole error (`chain`) goes to the log.
fn why(e: &reqwest::Error, chain: &str) -> &'static str {
    match () {
        _ if e.is_timeout() => "it did not answer in time",
        // rustls's verdicts ("invalid peer certificate: UnknownIssuer"), under hyper's and io's errors
        _ if chain.contains("certificate") => "TLS failed: its certificate is not trusted (check ca_location)",
        _ if e.is_connect() => "it cannot be reached",
        _ => "the call failed",
    }
}

/// The error and its causes, as the log shows them.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    /// Serves one connection on 127.0.0.1: reads the request head, then writes `head` and `body_bytes`
    /// bytes of body, or until the reader stops reading.
    fn serve_once(head: String, body_bytes: usize) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(head.as_bytes());
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < body_bytes && stream.write_all(&chunk).is_ok() {
                sent += chunk.len();
            }
        });
        format!("http://{address}/")
    }

    fn read(url: &str, limit: usize) -> Result<Vec<u8>, String> {
        crate::runtime::runtime().block_on(async {
            let answer = reqwest::Client::new().get(url).send().await.unwrap();
            super::bounded(answer, limit).await
        })
    }

    #[test]
    fn an_answer_past_the_limit_is_refused_whether_its_length_is_told_or_not() {
        let told = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".into(), 0);
        assert_eq!(read(&told, 1000), Err("its answer is larger than 1000 bytes".into()));
        // Without a length, the body is read only up to the limit, however long the server goes on.
        let endless = serve_once("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".into(), 1 << 30);
        assert_eq!(read(&endless, 100_000), Err("its answer is larger than 100000 bytes".into()));
        let small = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".into(), 0);
        assert_eq!(read(&small, 1000), Ok(b"{}".to_vec()));
    }

    #[test]
    fn an_error_answer_is_logged_in_its_first_bytes_however_long() {
        let endless = serve_once("HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\n".into(), 1 << 30);
        let logged = crate::runtime::runtime().block_on(async {
            super::first_bytes(reqwest::Client::new().get(&endless).send().await.unwrap(), super::MAX_LOGGED_BYTES)
                .await
        });
        assert_eq!(logged, vec![b' '; super::MAX_LOGGED_BYTES]);
    }
}
