//! Kafka checks with `security` other than plaintext, against real servers:
//! TLS through `stunnel4` in front of `tansu` (right CA up; a foreign CA,
//! a wrong name down with reason tls), SASL SCRAM against `tansu
//! --authentication` (refused: down with reason auth), and the SCRAM client
//! itself against PostgreSQL's SCRAM-SHA-256 (right password accepted,
//! wrong one refused), since tansu with in-memory storage cannot hold a user.

use std::sync::Arc;
use std::time::Duration;

use pantau_collector::checks::kafka::sasl::Scram;
use pantau_collector::checks::{Checker, Outcome};
use pantau_collector::target::Target;
use pantau_config::{CheckType, CollectorConfig, KafkaSasl, RawKafka, RawTarget, SaslMechanism};
use pantau_proto::v1::{FailureReason, TargetSource};
use pantau_testkit::{Kafka, KafkaOptions, Postgres, TlsFiles};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn compile(t: &RawTarget) -> Result<Target, String> {
    let cfg = CollectorConfig {
        timeout: Duration::from_secs(5),
        ..CollectorConfig::default()
    };
    let parsed = t.clone().parse("t").map_err(|e| format!("{e:?}"))?;
    Target::compile(&Arc::new(parsed), "t", &cfg, TargetSource::Config).map_err(|e| format!("{e:?}"))
}

fn producer(broker: &str, f: impl FnOnce(&mut RawKafka)) -> RawTarget {
    let mut t = RawTarget::new("p", CheckType::KafkaProducer);
    let mut k = RawKafka {
        bootstrap_servers: vec![broker.to_owned()],
        topic: Some("secure".to_owned()),
        ..RawKafka::default()
    };
    f(&mut k);
    t.kafka = Some(k);
    t
}

/// A consumer mode and its `producer` or `group`.
fn consumer_mode(mode: &'static str) -> (&'static str, Option<&'static str>, Option<&'static str>) {
    match mode {
        "end_to_end" => (mode, Some("p"), None),
        _ => (mode, None, Some("pantau-lag")),
    }
}

async fn check(t: &RawTarget) -> Outcome {
    let target = compile(t).unwrap_or_else(|e| panic!("{e}"));
    Checker::new().unwrap().check(&target).await
}

async fn broker(options: KafkaOptions) -> Kafka {
    Kafka::start_with(options)
        .await
        .expect("tansu starts (cargo install --locked tansu --features dynostore), and stunnel4 for TLS (apt-get install stunnel4)")
}

#[tokio::test]
async fn ssl_is_up_with_the_brokers_ca_and_down_tls_otherwise() {
    let k = broker(KafkaOptions {
        authentication: false,
        tls: true,
    })
    .await;
    k.create_topic("secure", 1).await.unwrap();
    let ca = k.tls_files().unwrap().ca.clone();
    let ssl = |k: &mut RawKafka| {
        k.security = Some("ssl".into());
        k.ca_file = Some(ca.clone());
    };
    let o = check(&producer(&k.bootstrap(), ssl)).await;
    assert!(o.up, "{o:?}\n{}", k.log_tail());
    let first = match &o.detail {
        Some(pantau_proto::v1::check_result::Detail::Kafka(d)) => d.offset,
        other => panic!("{other:?}"),
    };
    assert!(first >= 0);

    // Both consumer modes over TLS too: the canary read back (leader
    // connection), and a group's lag (the coordinator's connection).
    for (id, mode) in [
        ("e2e", consumer_mode("end_to_end")),
        ("lag", consumer_mode("group_lag")),
    ] {
        let mut t = producer(&k.bootstrap(), |x| {
            ssl(x);
            x.mode = Some(mode.0.into());
            x.producer = mode.1.map(Into::into);
            x.group = mode.2.map(Into::into);
        });
        t.id = id.into();
        t.check = CheckType::KafkaConsumer;
        let o = check(&t).await;
        assert!(o.up, "{id} over TLS: {o:?}");
    }

    // Plaintext to a TLS port: the broker's answer never comes in Kafka's framing.
    let o = check(&producer(&k.bootstrap(), |_| {})).await;
    assert!(!o.up, "{o:?}");

    // Not verifying: up without the CA.
    let o = check(&producer(&k.bootstrap(), |k| {
        k.security = Some("ssl".into());
        k.verify_tls = Some(false);
    }))
    .await;
    assert!(o.up, "{o:?}");

    // A CA that did not sign the broker's certificate.
    let dir = tempfile::tempdir().unwrap();
    let other = TlsFiles::generate(dir.path()).unwrap();
    let o = check(&producer(&k.bootstrap(), |k| {
        k.security = Some("ssl".into());
        k.ca_file = Some(other.ca.clone());
    }))
    .await;
    assert!(!o.up);
    assert_eq!(o.reason, FailureReason::Tls, "{o:?}");
    assert!(o.message.contains("TLS handshake with"), "{}", o.message);

    // The right CA, a name the certificate does not carry.
    let o = check(&producer(&k.bootstrap(), |k| {
        ssl(k);
        k.server_name = Some("kafka.example".into());
    }))
    .await;
    assert_eq!(o.reason, FailureReason::Tls, "{o:?}");

    // A ca_file that is not there is refused when the target is compiled, naming it.
    let e = compile(&producer(&k.bootstrap(), |k| {
        k.security = Some("ssl".into());
        k.ca_file = Some(dir.path().join("missing.pem"));
    }))
    .unwrap_err();
    assert!(e.contains("kafka.ca_file"), "{e}");
}

#[tokio::test]
async fn scram_credentials_the_broker_does_not_hold_are_down_auth() {
    let k = broker(KafkaOptions {
        authentication: true,
        tls: false,
    })
    .await;
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
        let o = check(&producer(&k.bootstrap(), |k| {
            k.security = Some("sasl_plaintext".into());
            k.sasl_mechanism = Some(mechanism.into());
            k.sasl_username = Some("alice".into());
            k.sasl_password = Some("hunter2-secret".into());
        }))
        .await;
        assert!(!o.up, "{mechanism}: {o:?}");
        assert_eq!(o.reason, FailureReason::Auth, "{mechanism}: {o:?}\n{}", k.log_tail());
        assert!(!o.message.contains("hunter2"), "{}", o.message);
        if mechanism.starts_with("SCRAM") {
            // The broker's own SCRAM verdict (RFC 5802 `e=`), not a dropped connection.
            assert!(o.message.contains("unknown-user"), "{}", o.message);
        } else {
            // tansu 0.6 does not offer PLAIN: it drops the connection at the handshake.
            assert!(o.message.contains("during SASL authentication"), "{}", o.message);
        }
    }
    // Without SASL the broker answers nothing but ApiVersions and SASL: not up.
    let o = check(&producer(&k.bootstrap(), |_| {})).await;
    assert!(!o.up, "{o:?}");
}

#[tokio::test]
async fn sasl_ssl_speaks_tls_then_sasl() {
    let k = broker(KafkaOptions {
        authentication: true,
        tls: true,
    })
    .await;
    let ca = k.tls_files().unwrap().ca.clone();
    let o = check(&producer(&k.bootstrap(), |k| {
        k.security = Some("sasl_ssl".into());
        k.ca_file = Some(ca.clone());
        k.sasl_mechanism = Some("SCRAM-SHA-512".into());
        k.sasl_username = Some("alice".into());
        k.sasl_password = Some("pw".into());
    }))
    .await;
    // Through TLS, to the broker's SCRAM verdict.
    assert_eq!(o.reason, FailureReason::Auth, "{o:?}");
}

/// One PostgreSQL backend message: its type and body.
async fn pg_read(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let kind = s.read_u8().await.unwrap();
    let len = usize::try_from(s.read_i32().await.unwrap()).unwrap();
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).await.unwrap();
    (kind, body)
}

async fn pg_send(s: &mut TcpStream, kind: u8, body: &[u8]) {
    let mut m = vec![kind];
    m.extend_from_slice(&i32::try_from(body.len() + 4).unwrap().to_be_bytes());
    m.extend_from_slice(body);
    s.write_all(&m).await.unwrap();
}

/// Logs in to PostgreSQL as `user` with the SCRAM client of the Kafka
/// checks: `Ok` once the server says AuthenticationOk.
async fn pg_scram_login(port: u16, user: &str, password: &str) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut startup = 196_608i32.to_be_bytes().to_vec();
    startup.extend_from_slice(format!("user\0{user}\0database\0postgres\0\0").as_bytes());
    let mut m = i32::try_from(startup.len() + 4).unwrap().to_be_bytes().to_vec();
    m.extend_from_slice(&startup);
    s.write_all(&m).await.unwrap();
    let (kind, body) = pg_read(&mut s).await;
    assert_eq!(
        (kind, &body[..4]),
        (b'R', &10i32.to_be_bytes()[..]),
        "AuthenticationSASL"
    );
    assert!(String::from_utf8_lossy(&body).contains("SCRAM-SHA-256"));
    let mut scram = Scram::new(
        &KafkaSasl {
            mechanism: SaslMechanism::ScramSha256,
            username: user.into(),
            password: password.into(),
        },
        "pantauNonce0123456789",
    );
    let first = scram.client_first();
    let mut initial = b"SCRAM-SHA-256\0".to_vec();
    initial.extend_from_slice(&i32::try_from(first.len()).unwrap().to_be_bytes());
    initial.extend_from_slice(first.as_bytes());
    pg_send(&mut s, b'p', &initial).await;
    let (kind, body) = pg_read(&mut s).await;
    assert_eq!(
        (kind, &body[..4]),
        (b'R', &11i32.to_be_bytes()[..]),
        "AuthenticationSASLContinue"
    );
    let last = scram.client_final(&body[4..])?;
    pg_send(&mut s, b'p', last.as_bytes()).await;
    let (kind, body) = pg_read(&mut s).await;
    if kind == b'E' {
        return Err(String::from_utf8_lossy(&body).into_owned());
    }
    assert_eq!(
        (kind, &body[..4]),
        (b'R', &12i32.to_be_bytes()[..]),
        "AuthenticationSASLFinal"
    );
    scram.verify_server(&body[4..])?;
    let (kind, body) = pg_read(&mut s).await;
    assert_eq!((kind, &body[..4]), (b'R', &0i32.to_be_bytes()[..]), "AuthenticationOk");
    Ok(())
}

#[tokio::test]
async fn the_scram_client_logs_in_to_postgresql_and_a_wrong_password_is_refused() {
    let pg = Postgres::start().await.expect("PostgreSQL starts");
    pg.create_login("scram_probe", "correct horse").await.unwrap();
    pg_scram_login(pg.port(), "scram_probe", "correct horse")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", pg.log_tail()));
    let e = pg_scram_login(pg.port(), "scram_probe", "wrong horse")
        .await
        .unwrap_err();
    assert!(e.contains("password authentication failed"), "{e}");
}
