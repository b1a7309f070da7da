//! The fault suite under load: the real gateway (the rig's binary) loading the real plugin, a real broker
//! crashed and restarted, the gateway stopped, callers that give up. Every scenario reads the topic back
//! and checks each request's answer against it: a 200 is there exactly once, a 503 is not there, a 504 is
//! there at most once. Each prints its figures (docs/reliability.md's table). The scenarios run one at
//! a time: one of them crashes the broker every test uses.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::gateway::*;
use common::proxy::Proxy;
use common::*;
use rdkafka::message::Message;
use serde_json::{json, Value};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Request `id` of a load on `endpoint`: its id is the record's key and its body.
fn request(endpoint: &str, topic: &str, id: usize) -> (String, Vec<(String, String)>, String) {
    let id = format!("id-{id}");
    (format!("{endpoint}/{topic}"), vec![("Message-Key".into(), id.clone())], json!({ "some_message": id }).to_string())
}

/// What a load's answers and the topic say together (printed for docs/reliability.md).
#[derive(Debug)]
#[allow(dead_code)]
struct Report {
    sent: usize,
    statuses: HashMap<String, usize>,
    read_back: usize,
    lost: usize,
    duplicated: usize,
    /// 504s whose record is on the topic ("may be stored": some are)
    maybe_stored: usize,
}

/// Reads `topic` back and holds every answer of `sent` to it: a 200 is there once (else lost), nothing
/// is there twice (else duplicated), and a request answered anything but 200 or 504 is not there.
fn read_back(topic: &str, sent: &[Sent]) -> Report {
    let mut copies: HashMap<String, usize> = HashMap::new();
    let records = all_records(topic);
    for r in &records {
        *copies.entry(String::from_utf8(r.key().unwrap().to_vec()).unwrap()).or_default() += 1;
    }
    let mut report = Report {
        sent: sent.len(),
        statuses: tally(sent),
        read_back: records.len(),
        lost: 0,
        duplicated: copies.values().filter(|&&n| n > 1).count(),
        maybe_stored: 0,
    };
    for s in sent {
        let on_topic = copies.get(&format!("id-{}", s.id)).copied().unwrap_or(0);
        match &s.answer {
            Ok((200, _)) if on_topic == 0 => report.lost += 1,
            Ok((200, _)) => {}
            Ok((504, _)) => report.maybe_stored += on_topic.min(1),
            other => assert_eq!(on_topic, 0, "request {} answered {other:?} is on the topic", s.id),
        }
    }
    println!("{report:?}");
    let mut messages: HashMap<String, usize> = HashMap::new();
    for s in sent {
        if let Ok((status @ 500.., body)) = &s.answer {
            let message = serde_json::from_str::<Value>(body).map(|b| b["message"].to_string()).unwrap_or_default();
            *messages.entry(format!("{status} {}", message.replace(&format!("topic {topic}: "), ""))).or_default() += 1;
        }
    }
    println!("failures: {messages:#?}");
    assert_eq!((report.lost, report.duplicated), (0, 0), "{report:?}");
    report
}

/// The answers that are not the plugin's own JSON.
fn foreign(sent: &[Sent]) -> Vec<&Sent> {
    sent.iter()
        .filter(|s| {
            !matches!(&s.answer, Ok((status, body))
                if serde_json::from_str::<Value>(body).is_ok_and(|b| b["statusCode"].as_str() == Some(&status.to_string())))
        })
        .collect()
}

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn a_broker_crashed_and_restarted_under_load_loses_and_duplicates_nothing(front) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let topic = topic_with_schema("load-crash", 3, SEED_SCHEMA);
        let gateway = front.start(gateway_config(
            "30s",
            &[("/v1/event/{topic}", config_value(REGISTRY, json!({"timeout_ms": 10000})))],
        ));
        let progress = Progress::default();
        let (sent, crashed, resumed) = std::thread::scope(|s| {
            let load = s.spawn(|| {
                load(
                    &gateway.address,
                    Connections::PerRequest,
                    16,
                    6000,
                    |id| request("/v1/event", &topic, id),
                    &progress,
                )
            });
            progress.wait_for(1500);
            crash_broker();
            let crashed = Instant::now();
            resume_broker();
            (load.join().unwrap(), crashed, Instant::now())
        });
        let report = read_back(&topic, &sent);
        // Every answer is the plugin's, within its budget (timeout_ms and the sweeper's round): none waited
        // for KrakenD's own timeout.
        assert!(foreign(&sent).is_empty(), "{:?}", foreign(&sent).first());
        let slowest = sent.iter().map(|s| s.answered - s.started).max().unwrap();
        assert!(slowest < Duration::from_millis(11_500), "a caller waited {slowest:?}");
        let recovered = sent
            .iter()
            .filter(|s| s.started > crashed && matches!(s.answer, Ok((200, _))))
            .map(|s| s.answered - crashed)
            .min()
            .expect("publishing resumed");
        println!(
            "broker down for {:.1} s; first 200 for a request sent after the crash {:.1} s after it",
            (resumed - crashed).as_secs_f64(),
            recovered.as_secs_f64()
        );
        assert!(report.statuses.get("200").copied().unwrap_or(0) > 4500, "{report:?}");
    }
}

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn a_gateway_stopped_under_load_answers_every_request_it_took_and_exits_within_its_flush_budget(front) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let topic = topic_with_schema("load-stop", 3, SEED_SCHEMA);
        // Two backends with equal Kafka settings share one producer: stopping must answer both's callers.
        let mut gateway = front.start(gateway_config(
            "30s",
            &[
                ("/v1/event/{topic}", config_value(REGISTRY, json!({"timeout_ms": 5000}))),
                ("/v1/other/{topic}", config_value(REGISTRY, json!({"timeout_ms": 5000, "max_body_bytes": 4096}))),
            ],
        ));
        let progress = Progress::default();
        let endpoint = |id: usize| if id.is_multiple_of(2) { "/v1/event" } else { "/v1/other" };
        let address = gateway.address.clone();
        let (sent, stopped, exit) = std::thread::scope(|s| {
            let load = s.spawn(|| {
                load(&address, Connections::PerRequest, 16, 4000, |id| request(endpoint(id), &topic, id), &progress)
            });
            progress.wait_for(1000);
            let stopped = Instant::now();
            gateway.signal(libc::SIGTERM);
            // the producer's drain budget (message.timeout.ms 3.5 s and its expiry scan), and start-up slack
            let exit = gateway.exited_within(Duration::from_secs(15));
            (load.join().unwrap(), stopped, exit)
        });
        let exit = exit.expect("the gateway exits within its flush budget");
        assert!(exit.success(), "{exit}");
        let report = read_back(&topic, &sent);
        // Every request the gateway took got the plugin's answer; the others found no gateway to talk to
        // (refused, or reset in the listener's backlog) and are not on the topic (read_back).
        for s in foreign(&sent) {
            assert!(s.answer.is_err(), "request {} got {:?}", s.id, s.answer);
        }
        let longest = sent.iter().filter(|s| s.answered > stopped).map(|s| s.answered - stopped).max().unwrap();
        println!(
            "stopped after {} answers; the last caller answered {:.1} s after SIGTERM",
            1000,
            longest.as_secs_f64()
        );
        assert!(longest < Duration::from_secs(15), "a caller waited {longest:?}");
        assert!(report.statuses.get("200").copied().unwrap_or(0) >= 1000, "{report:?}");
    }
}

/// Sends request `id` on a connection of its own and closes it: at once (`wait` None, a caller who hangs
/// up), or after waiting `wait` for an answer (a gateway in front with that timeout). Whether an answer
/// came.
fn give_up(address: &str, topic: &str, id: usize, wait: Option<Duration>) -> bool {
    let (path, _, body) = request("/v1/event", topic, id);
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: gateway\r\nMessage-Key: id-{id}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    std::io::Write::write_all(&mut stream, head.as_bytes()).unwrap();
    let Some(wait) = wait else { return false };
    stream.set_read_timeout(Some(wait)).unwrap();
    matches!(std::io::Read::read(&mut stream, &mut [0u8; 1]), Ok(1..))
}

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn callers_who_give_up_leave_their_outcome_in_the_log_and_nothing_behind(front) {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let topic = topic_with_schema("load-gone", 3, SEED_SCHEMA);
        // The broker through a proxy that can hold every byte; the endpoint's timeout (1 s) is shorter than
        // the plugin's budget, as a misconfigured gateway's would be. The service has no endpoint timeout: a
        // gateway in front of it that waits 1 s is played by callers who wait 1 s.
        let proxy = Proxy::start(&var("KK_FAULTY_BOOTSTRAP"), var("KK_FAULTY_BROKER"));
        let mut backend = config_value(REGISTRY, json!({"timeout_ms": 20000}));
        backend["bootstrap_servers"] = json!(var("KK_FAULTY_BOOTSTRAP"));
        let gateway = front.start(gateway_config("1s", &[("/v1/event/{topic}", backend)]));
        let progress = Progress::default();
        let warm =
            load(&gateway.address, Connections::PerRequest, 1, 1, |id| request("/v1/event", &topic, id), &progress);
        assert!(matches!(warm[0].answer, Ok((200, _))), "{:?}", warm[0].answer);
        // What a request could leave behind: the gateway's goroutines, the service's open files.
        let held = || if front == Front::Plugin { gateway.goroutines() } else { gateway.open_files() };
        let before = held();

        // Held by the network: half the callers hang up at once, half wait for the endpoint's timeout.
        proxy.freeze(true);
        let (gone, waited) = (200, 64);
        std::thread::scope(|s| {
            let waiting = s.spawn(|| match front {
                Front::Plugin => {
                    let ids = |id| request("/v1/event", &topic, 1 + id);
                    for s in load(&gateway.address, Connections::PerRequest, 16, waited, ids, &progress) {
                        // KrakenD answers a request past its endpoint's timeout itself: the plugin's answer is lost
                        assert!(matches!(s.answer, Ok((500, _))), "{:?}", s.answer);
                    }
                }
                Front::Service => std::thread::scope(|s| {
                    let (gateway, topic) = (&gateway, &topic);
                    for first in (0..waited).step_by(4) {
                        s.spawn(move || {
                            for id in first..first + 4 {
                                let wait = Some(Duration::from_secs(1));
                                assert!(!give_up(&gateway.address, topic, 1 + id, wait), "answered while held");
                            }
                        });
                    }
                }),
            });
            for id in 1 + waited..1 + waited + gone {
                give_up(&gateway.address, &topic, id, None);
            }
            waiting.join().unwrap();
        });
        proxy.freeze(false);

        // Every record's outcome is known and logged, though nobody waited for it.
        let abandoned = waited + gone;
        let deadline = Instant::now() + Duration::from_secs(60);
        let logged = loop {
            let log = gateway.log();
            let logged: Vec<String> =
                log.lines().filter(|l| l.contains("whose caller stopped waiting")).map(String::from).collect();
            if logged.len() >= abandoned {
                break logged;
            }
            assert!(Instant::now() < deadline, "{} of {abandoned} outcomes logged:\n{log}", logged.len());
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(logged.len(), abandoned, "each once");
        assert!(logged.iter().all(|l| l.contains(&format!("topic {topic}: ")) && l.contains("stored at partition")));
        let records = all_records(&topic);
        assert_eq!(records.len(), 1 + abandoned, "every record reached the broker once the network was back");
        let keys: std::collections::HashSet<_> = records.iter().map(|r| r.key().unwrap().to_vec()).collect();
        assert_eq!(keys.len(), records.len(), "each once");
        if front == Front::Plugin {
            assert!(gateway.log().contains("less than this backend's budget"), "the endpoint's short timeout is named");
        }

        // Nothing is left behind per request.
        let deadline = Instant::now() + Duration::from_secs(30);
        while held() > before + 5 {
            assert!(Instant::now() < deadline, "{} held, {before} before", held());
            std::thread::sleep(Duration::from_millis(100));
        }
        println!(
            "{abandoned} callers gave up ({waited} after 1 s, {gone} hung up): {abandoned} outcomes logged, \
             {} records, {before} goroutines or open files before, {} after",
            records.len(),
            held()
        );
    }
}
