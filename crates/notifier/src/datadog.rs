//! The DataDog exporter (`exporters.datadog`): check results as metrics
//! through `POST /api/v2/series` (`pantau.check.up`, a gauge of 1 or 0, and
//! `pantau.check.duration`, seconds, tagged `target`, `location`, `kind`)
//! and alert transitions as events through `POST /api/v1/events`.
//!
//! Never in the checks' way: it reads the bus with live subscriptions of its
//! own and puts what it reads in a bounded queue (`exporters.datadog.queue`;
//! when full, the newest are dropped and counted in
//! `pantau_datadog_dropped_total{kind}`); a task sends the queue every
//! `interval`, one series request per batch of up to [`MAX_SERIES_POINTS`]
//! results and one request per event, retrying a 408, a 429, a 5xx or a
//! transport failure with backoff (500 ms doubling, [`ATTEMPTS`] attempts).
//! Sends are counted in `pantau_datadog_requests_total{endpoint,result}`.
//! The API key is read once at start (`api_key_env` or `api_key_file`),
//! sent only in the `DD-API-KEY` header and never logged.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use pantau_config::DatadogConfig;
use pantau_core::bus::{BusEvent, Subscription};
use pantau_core::service::Context;
use pantau_proto::v1::{AlertEvent, AlertState, CheckResult, CheckStatus, Severity};
use serde::Serialize;
use tokio::sync::{Mutex, mpsc};

pub const REQUESTS: &str = "pantau_datadog_requests_total";
pub const DROPPED: &str = "pantau_datadog_dropped_total";
/// Results per series request (two points each): well under the intake's
/// 500 KB.
pub const MAX_SERIES_POINTS: usize = 1000;
/// Tries per request.
pub const ATTEMPTS: u32 = 4;
/// DataDog's longest event title and text, in characters.
const MAX_TITLE: usize = 100;
const MAX_TEXT: usize = 4000;

/// Why the exporter cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DatadogError {
    #[error("exporters.datadog.api_key_env: the environment variable `{0}` is not set or not text")]
    KeyEnv(String),
    #[error("exporters.datadog.api_key_file: cannot read {path}: {source}")]
    KeyFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("exporters.datadog: the API key is {0}")]
    KeyShape(&'static str),
    #[error("exporters.datadog: cannot build the HTTP client: {0}")]
    Client(String),
}

/// The API key; its `Debug` never shows it.
#[derive(Clone)]
pub struct ApiKey(Arc<str>);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl ApiKey {
    /// Reads the key named by `cfg` (`lookup` reads an environment variable).
    pub fn load(cfg: &DatadogConfig, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, DatadogError> {
        let raw = match (&cfg.api_key_env, &cfg.api_key_file) {
            (Some(name), _) => lookup(name).ok_or_else(|| DatadogError::KeyEnv(name.clone()))?,
            (None, Some(path)) => std::fs::read_to_string(path).map_err(|source| DatadogError::KeyFile {
                path: path.clone(),
                source,
            })?,
            (None, None) => return Err(DatadogError::KeyShape("not configured")),
        };
        let key = raw.trim();
        if key.is_empty() {
            return Err(DatadogError::KeyShape("empty"));
        }
        if key.len() > 256 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DatadogError::KeyShape(
                "not one line of at most 256 printable ASCII characters",
            ));
        }
        Ok(Self(key.into()))
    }
}

/// What waits to be sent.
#[derive(Debug, Clone)]
enum Item {
    Result(Box<CheckResult>),
    Alert(Box<AlertEvent>),
}

/// `POST /api/v2/series`'s body.
#[derive(Debug, Serialize, PartialEq)]
pub struct SeriesPayload {
    pub series: Vec<Series>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Series {
    pub metric: &'static str,
    /// 3: gauge.
    #[serde(rename = "type")]
    pub kind: u8,
    pub points: Vec<Point>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Point {
    pub timestamp: i64,
    pub value: f64,
}

/// `POST /api/v1/events`'s body.
#[derive(Debug, Serialize, PartialEq)]
pub struct EventPayload {
    pub title: String,
    pub text: String,
    pub alert_type: &'static str,
    pub date_happened: i64,
    pub aggregation_key: String,
    pub source_type_name: &'static str,
    pub tags: Vec<String>,
}

/// A tag `key:value` DataDog keeps as given: characters outside
/// `[A-Za-z0-9_\-:./]` become `_`, at most 200 characters.
fn tag(key: &str, value: &str) -> String {
    format!("{key}:{value}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-:./".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect()
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn seconds(t: Option<&prost_types::Timestamp>, now: SystemTime) -> i64 {
    let now = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    // The intake refuses points over an hour old or ten minutes ahead: a
    // result's own time within that window, else now.
    t.map(|t| t.seconds)
        .filter(|s| (now - 3_000..=now + 300).contains(s))
        .unwrap_or(now)
}

/// The series of a batch of check results.
pub fn series(results: &[CheckResult], extra: &[String], now: SystemTime) -> SeriesPayload {
    let mut out = Vec::with_capacity(results.len() * 2);
    for r in results {
        let mut tags = vec![
            tag("target", &r.target_id),
            tag("location", &r.location),
            tag("kind", r.kind().as_str_name().trim_start_matches("CHECK_KIND_")).to_lowercase(),
        ];
        tags.extend(extra.iter().cloned());
        let timestamp = seconds(r.checked_at.as_ref(), now);
        let up = if r.status() == CheckStatus::Up { 1.0 } else { 0.0 };
        out.push(Series {
            metric: "pantau.check.up",
            kind: 3,
            points: vec![Point { timestamp, value: up }],
            tags: tags.clone(),
            unit: None,
        });
        if let Some(d) = r.latency.as_ref().and_then(pantau_core::time::from_duration) {
            out.push(Series {
                metric: "pantau.check.duration",
                kind: 3,
                points: vec![Point {
                    timestamp,
                    value: d.as_secs_f64(),
                }],
                tags,
                unit: Some("second"),
            });
        }
    }
    SeriesPayload { series: out }
}

/// The event of an alert transition.
pub fn event(a: &AlertEvent, extra: &[String], now: SystemTime) -> EventPayload {
    let state = a.state();
    let (word, alert_type) = match state {
        AlertState::Resolved => ("Resolved", "success"),
        AlertState::Acknowledged => ("Acknowledged", "info"),
        _ => (
            "Firing",
            match a.severity() {
                Severity::Critical => "error",
                Severity::Warning => "warning",
                _ => "info",
            },
        ),
    };
    let name = if a.rule_name.is_empty() {
        &a.rule_id
    } else {
        &a.rule_name
    };
    let text = if a.actor.is_empty() {
        a.summary.clone()
    } else {
        format!("{}\n\nby {}", a.summary, a.actor)
    };
    let severity = a
        .severity()
        .as_str_name()
        .trim_start_matches("SEVERITY_")
        .to_lowercase();
    let mut tags = vec![
        tag("rule", &a.rule_id),
        tag("severity", &severity),
        tag(
            "state",
            &state.as_str_name().trim_start_matches("ALERT_STATE_").to_lowercase(),
        ),
        tag("alert_id", &a.alert_id),
    ];
    let mut labels: Vec<(&String, &String)> = a.labels.iter().collect();
    labels.sort();
    tags.extend(labels.into_iter().take(20).map(|(k, v)| tag(k, v)));
    tags.extend(extra.iter().cloned());
    EventPayload {
        title: clip(&format!("[{word}] {name}"), MAX_TITLE),
        text: clip(&text, MAX_TEXT),
        alert_type,
        date_happened: seconds(None, now),
        // At most 100 bytes: a fingerprint is ASCII hex, anything else is cut.
        aggregation_key: a.fingerprint.chars().filter(char::is_ascii).take(100).collect(),
        source_type_name: "pantau",
        tags,
    }
}

/// Sends batches to one DataDog intake.
#[derive(Debug, Clone)]
pub struct Sender {
    http: reqwest::Client,
    base: String,
    key: ApiKey,
    /// The first retry's wait (doubling).
    backoff: Duration,
}

impl Sender {
    pub fn new(cfg: &DatadogConfig, key: ApiKey) -> Result<Self, DatadogError> {
        // As the channels do: one process-wide provider for rustls.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| DatadogError::Client(e.to_string()))?;
        Ok(Self {
            http,
            base: cfg.base_url(),
            key,
            backoff: Duration::from_millis(500),
        })
    }

    /// Posts `body` to `path`, retrying what may pass later; whether it was taken.
    pub async fn post(&self, endpoint: &'static str, path: &str, body: &impl Serialize) -> bool {
        let url = format!("{}{path}", self.base);
        let mut wait = self.backoff;
        for attempt in 1..=ATTEMPTS {
            let sent = self
                .http
                .post(&url)
                .header("DD-API-KEY", &*self.key.0)
                .json(body)
                .send()
                .await;
            let retry = match &sent {
                Ok(r) if r.status().is_success() => {
                    metrics::counter!(REQUESTS, "endpoint" => endpoint, "result" => "ok").increment(1);
                    return true;
                }
                Ok(r) => {
                    let s = r.status();
                    let again = s.is_server_error() || s.as_u16() == 429 || s.as_u16() == 408;
                    tracing::warn!(endpoint, status = s.as_u16(), attempt, "datadog refused a request");
                    again
                }
                // The error names the URL (no key: it is in a header).
                Err(e) => {
                    tracing::warn!(endpoint, attempt, error = %e, "cannot reach datadog");
                    true
                }
            };
            if !retry || attempt == ATTEMPTS {
                break;
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        metrics::counter!(REQUESTS, "endpoint" => endpoint, "result" => "failed").increment(1);
        false
    }
}

/// Starts the exporter's tasks on `ctx` when `exporters.datadog` is set.
pub fn start(ctx: &Context) -> Result<(), DatadogError> {
    let Some(cfg) = ctx.config.exporters.datadog.clone() else {
        return Ok(());
    };
    let key = ApiKey::load(&cfg, |name| std::env::var(name).ok())?;
    let sender = Sender::new(&cfg, key)?;
    for (endpoint, result) in [
        ("series", "ok"),
        ("series", "failed"),
        ("events", "ok"),
        ("events", "failed"),
    ] {
        metrics::counter!(REQUESTS, "endpoint" => endpoint, "result" => result).increment(0);
    }
    for kind in ["check_result", "alert"] {
        metrics::counter!(DROPPED, "kind" => kind).increment(0);
    }
    metrics::describe_counter!(
        REQUESTS,
        metrics::Unit::Count,
        "Requests to DataDog's intake, by endpoint and result"
    );
    metrics::describe_counter!(
        DROPPED,
        metrics::Unit::Count,
        "Results and alert events dropped because the DataDog queue was full"
    );
    let (tx, rx) = mpsc::channel::<Item>(cfg.queue);
    let rx = Arc::new(Mutex::new(rx));
    let bus = Arc::clone(&ctx.bus);
    ctx.spawn_supervised("datadog-intake", move || intake(Arc::clone(&bus), tx.clone()));
    let stop = ctx.shutdown.clone();
    let cfg = Arc::new(cfg);
    ctx.spawn_supervised("datadog-export", move || {
        export(Arc::clone(&cfg), sender.clone(), Arc::clone(&rx), stop.clone())
    });
    tracing::info!(url = %ctx.config.exporters.datadog.as_ref().map(DatadogConfig::base_url).unwrap_or_default(), "datadog exporter running");
    Ok(())
}

/// Reads check results and alert events off the bus into the queue; never waits for it.
async fn intake(bus: Arc<dyn pantau_core::bus::Bus>, tx: mpsc::Sender<Item>) -> Result<(), String> {
    let results = bus
        .subscribe(Subscription::live("pantau.check.result.>"))
        .await
        .map_err(|e| e.to_string())?;
    let alerts = bus
        .subscribe(Subscription::live("pantau.alert.>"))
        .await
        .map_err(|e| e.to_string())?;
    let mut both = futures::stream::select(results, alerts);
    while let Some(msg) = both.next().await {
        let (item, kind) = match BusEvent::decode(&msg) {
            Ok(BusEvent::CheckResult(r)) => (Item::Result(Box::new(r)), "check_result"),
            Ok(BusEvent::Alert { alert, .. }) => (Item::Alert(Box::new(alert)), "alert"),
            // Another consumer dead-letters what does not decode.
            _ => continue,
        };
        if tx.try_send(item).is_err() {
            metrics::counter!(DROPPED, "kind" => kind).increment(1);
        }
    }
    Err("the bus subscription ended".to_owned())
}

/// Sends the queue every `interval`, and once more at shutdown.
async fn export(
    cfg: Arc<DatadogConfig>,
    sender: Sender,
    rx: Arc<Mutex<mpsc::Receiver<Item>>>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut rx = rx.lock().await;
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            () = stop.cancelled() => true,
            _ = tick.tick() => false,
        };
        let mut results = Vec::new();
        let mut alerts = Vec::new();
        while let Ok(item) = rx.try_recv() {
            match item {
                Item::Result(r) => results.push(*r),
                Item::Alert(a) => alerts.push(*a),
            }
        }
        let now = SystemTime::now();
        let send = async {
            for batch in results.chunks(MAX_SERIES_POINTS) {
                sender
                    .post("series", "/api/v2/series", &series(batch, &cfg.tags, now))
                    .await;
            }
            for a in &alerts {
                sender.post("events", "/api/v1/events", &event(a, &cfg.tags, now)).await;
            }
        };
        if last {
            // What is queued, once, within two seconds.
            let _ = tokio::time::timeout(Duration::from_secs(2), send).await;
            return;
        }
        send.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(env: Option<&str>, file: Option<std::path::PathBuf>) -> DatadogConfig {
        DatadogConfig {
            site: "datadoghq.com".into(),
            url: None,
            api_key_env: env.map(str::to_owned),
            api_key_file: file,
            interval: Duration::from_secs(10),
            queue: 10,
            tags: Vec::new(),
        }
    }

    #[test]
    fn the_key_is_read_checked_and_never_printed() {
        let k = ApiKey::load(&cfg(Some("DD"), None), |_| Some(" abc123\n".into())).unwrap();
        assert_eq!(&*k.0, "abc123");
        assert_eq!(format!("{k:?}"), "ApiKey(***)");
        assert!(matches!(
            ApiKey::load(&cfg(Some("DD"), None), |_| None),
            Err(DatadogError::KeyEnv(_))
        ));
        for bad in ["", "  ", "two words", "k\u{0}", &"k".repeat(300)] {
            let e = ApiKey::load(&cfg(Some("DD"), None), |_| Some(bad.to_owned())).unwrap_err();
            assert!(matches!(e, DatadogError::KeyShape(_)), "{bad:?}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key");
        std::fs::write(&f, "from-file\n").unwrap();
        assert_eq!(&*ApiKey::load(&cfg(None, Some(f)), |_| None).unwrap().0, "from-file");
        assert!(ApiKey::load(&cfg(None, Some(dir.path().join("none"))), |_| None).is_err());
    }

    #[test]
    fn tags_are_sanitised_and_bounded() {
        assert_eq!(tag("target", "api 1/ü"), "target:api_1/_");
        assert_eq!(tag("k", &"v".repeat(500)).len(), 200);
        assert_eq!(clip(&"é".repeat(150), 100).chars().count(), 100);
    }
}
