//! `http_steps`: requests run in order on one client; each answer is checked
//! (status, conditions) and may set variables (JSONPath, header, regex) that
//! later steps use as `{{name}}`. The first step that fails ends the check,
//! and the result names it, with each step's latency in its detail.

use std::collections::BTreeMap;
use std::time::Duration;

use pantau_config::{Extract, HttpStepsTarget, Invalid, MAX_VARIABLE_BYTES, render};
use pantau_proto::v1::{FailureReason, HttpStepsDetail, StepResult, check_result::Detail};
use regex::Regex;
use serde_json_path::JsonPath;
use tokio::time::Instant;

use super::Outcome;
use super::conditions::Condition;
use super::http::{Clients, LOCATION_HEADER, classify, read_body};

/// A step compiled: its templates kept as text, everything else typed.
#[derive(Debug, Clone)]
struct Step {
    label: String,
    name: String,
    method: reqwest::Method,
    url: String,
    headers: Vec<(reqwest::header::HeaderName, String)>,
    body: Option<String>,
    expected_status: Vec<u16>,
    conditions: Vec<Condition>,
    extract: Vec<(String, Extractor)>,
}

#[derive(Debug, Clone)]
enum Extractor {
    Json(JsonPath, String),
    Header(reqwest::header::HeaderName),
    Regex(Regex),
}

/// A compiled `http_steps` target.
#[derive(Debug, Clone)]
pub struct StepsSpec {
    steps: Vec<Step>,
    verify_tls: bool,
    follow_redirects: bool,
    reuse_connection: bool,
    /// Its own client, when the target has TLS files, a proxy or `resolve`.
    client: Option<reqwest::Client>,
    /// The first step's URL with its password masked, for display.
    pub address: String,
}

impl StepsSpec {
    /// Compiles a parsed target; `Err` is a problem keyed under `prefix`.
    pub fn new(x: &HttpStepsTarget, prefix: &str) -> Result<Self, Vec<Invalid>> {
        let bad = |field: String, value: &str, why: String| {
            vec![Invalid {
                key: format!("{prefix}.{field}"),
                value: value.to_owned(),
                allowed: why,
            }]
        };
        let mut steps = Vec::with_capacity(x.steps.len());
        for (i, s) in x.steps.iter().enumerate() {
            let key = format!("steps[{i}]");
            let method_text = s.method.as_deref().unwrap_or("GET");
            let method = reqwest::Method::from_bytes(method_text.as_bytes())
                .map_err(|e| bad(format!("{key}.method"), method_text, e.to_string()))?;
            let mut headers = Vec::new();
            // The target's headers first; a step's own of the same name replace them.
            let own: BTreeMap<String, String> = s
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            for (k, v) in x
                .headers
                .iter()
                .filter(|(k, _)| !own.contains_key(&k.to_ascii_lowercase()))
                .chain(&own)
            {
                let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| bad(format!("{key}.headers"), k, format!("is not a header name: {e}")))?;
                headers.push((name, v.clone()));
            }
            let conditions = s
                .conditions
                .iter()
                .enumerate()
                .map(|(j, c)| Condition::compile(c).map_err(|e| bad(format!("{key}.conditions[{j}]"), "", e)))
                .collect::<Result<_, _>>()?;
            let extract = s
                .extract
                .iter()
                .map(|(name, e)| {
                    let field = format!("{key}.extract.{name}");
                    let x = match e {
                        Extract::Json(p) => Extractor::Json(
                            JsonPath::parse(p).map_err(|e| bad(format!("{field}.json"), p, e.to_string()))?,
                            p.clone(),
                        ),
                        Extract::Header(h) => Extractor::Header(
                            reqwest::header::HeaderName::from_bytes(h.as_bytes())
                                .map_err(|e| bad(format!("{field}.header"), h, e.to_string()))?,
                        ),
                        Extract::Regex(r) => Extractor::Regex(
                            Regex::new(r).map_err(|e| bad(format!("{field}.regex"), r, e.to_string()))?,
                        ),
                    };
                    Ok((name.clone(), x))
                })
                .collect::<Result<_, Vec<Invalid>>>()?;
            steps.push(Step {
                label: s.label(i),
                name: s.name.clone().unwrap_or_else(|| format!("step {}", i + 1)),
                method,
                url: s.url.clone(),
                headers,
                body: s.body.clone(),
                expected_status: s.expected_status.clone(),
                conditions,
                extract,
            });
        }
        let (verify, follow, reuse) = (
            x.verify_tls.unwrap_or(true),
            x.follow_redirects.unwrap_or(true),
            x.reuse_connection.unwrap_or(true),
        );
        let client = if x.tls.is_empty() && x.options.is_empty() {
            None
        } else {
            Some(
                super::http::build(&x.tls, verify, follow, reuse, &x.options)
                    .map_err(|e| bad(crate::target::tls_key(&e.to_string()).to_owned(), "", e.to_string()))?,
            )
        };
        Ok(Self {
            address: pantau_config::mask_url_password(&x.steps[0].url),
            steps,
            verify_tls: verify,
            follow_redirects: follow,
            reuse_connection: reuse,
            client,
        })
    }
}

/// What ended a step, before it becomes the check's outcome.
struct Failure {
    reason: FailureReason,
    what: String,
}

fn fail(reason: FailureReason, what: impl Into<String>) -> Failure {
    Failure {
        reason,
        what: what.into(),
    }
}

/// Runs the steps of `spec`; the caller bounds the time.
pub async fn check(clients: &Clients, spec: &StepsSpec, started: Instant) -> Outcome {
    let client = spec
        .client
        .as_ref()
        .unwrap_or_else(|| clients.pick(spec.verify_tls, spec.follow_redirects, spec.reuse_connection));
    let mut vars = BTreeMap::new();
    let mut detail = HttpStepsDetail::default();
    for (i, step) in spec.steps.iter().enumerate() {
        let began = Instant::now();
        let mut result = StepResult {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            name: step.name.clone(),
            ..StepResult::default()
        };
        let ran = run_step(client, clients, step, &mut vars, &mut result, began).await;
        result.latency = Some(pantau_core::time::to_duration(began.elapsed()));
        result.ok = ran.is_ok();
        detail.steps.push(result);
        if let Err(f) = ran {
            detail.failed_step = Some(u32::try_from(i).unwrap_or(u32::MAX));
            detail.failed_step_name.clone_from(&step.name);
            detail.failed_assertion.clone_from(&f.what);
            return Outcome::down(started.elapsed(), f.reason, format!("{}: {}", step.label, f.what))
                .with_detail(Detail::HttpSteps(detail));
        }
    }
    Outcome::up(started.elapsed(), Some(Detail::HttpSteps(detail)))
}

async fn run_step(
    client: &reqwest::Client,
    clients: &Clients,
    step: &Step,
    vars: &mut BTreeMap<String, String>,
    result: &mut StepResult,
    began: Instant,
) -> Result<(), Failure> {
    let undefined = |name: String| fail(FailureReason::Extraction, format!("variable `{name}` has no value"));
    let url_text = render(&step.url, vars).map_err(undefined)?;
    let url = reqwest::Url::parse(&url_text).map_err(|e| {
        fail(
            FailureReason::Extraction,
            format!(
                "the URL is not valid once its variables are set ({e}): {}",
                pantau_config::mask_url_password(&url_text)
            ),
        )
    })?;
    let mut req = client.request(step.method.clone(), url.clone());
    let mut has_location = false;
    for (name, template) in &step.headers {
        let value = render(template, vars).map_err(undefined)?;
        let value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
            fail(
                FailureReason::Extraction,
                format!("header {name} is not a valid header value once its variables are set"),
            )
        })?;
        has_location |= name.as_str() == LOCATION_HEADER;
        req = req.header(name.clone(), value);
    }
    if let Some(l) = clients.location()
        && !has_location
    {
        req = req.header(LOCATION_HEADER, l.clone());
    }
    if let Some(b) = &step.body {
        req = req.body(render(b, vars).map_err(undefined)?);
    }
    let mut resp = req.send().await.map_err(|e| {
        let (reason, message) = classify(&e, url.as_str());
        fail(reason, message)
    })?;
    let status = resp.status();
    result.status_code = u32::from(status.as_u16());
    let headers = resp.headers().clone();
    let body = read_body(&mut resp).await.map_err(|e| {
        let (reason, message) = classify(&e, url.as_str());
        fail(reason, format!("reading the body: {message}"))
    })?;
    let latency: Duration = began.elapsed();
    let accepted = if step.expected_status.is_empty() {
        (200..400).contains(&status.as_u16())
    } else {
        step.expected_status.contains(&status.as_u16())
    };
    if !accepted {
        let wanted = if step.expected_status.is_empty() {
            "200–399".to_owned()
        } else {
            step.expected_status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(fail(
            FailureReason::HttpStatus,
            format!("status {status}, expected {wanted}"),
        ));
    }
    for c in &step.conditions {
        c.check(latency, &headers, &body)
            .map_err(|why| fail(FailureReason::Assertion, why))?;
    }
    for (name, x) in &step.extract {
        let value = extract(x, &headers, &body)
            .map_err(|why| fail(FailureReason::Extraction, format!("cannot extract `{name}`: {why}")))?;
        if value.len() > MAX_VARIABLE_BYTES {
            return Err(fail(
                FailureReason::Extraction,
                format!(
                    "cannot extract `{name}`: its value is {} bytes, at most {MAX_VARIABLE_BYTES}",
                    value.len()
                ),
            ));
        }
        vars.insert(name.clone(), value);
    }
    Ok(())
}

/// The value `x` finds in an answer, or why there is none.
fn extract(x: &Extractor, headers: &reqwest::header::HeaderMap, body: &[u8]) -> Result<String, String> {
    match x {
        Extractor::Json(path, shown) => {
            let doc: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| format!("the body is not JSON ({e})"))?;
            let found = path.query(&doc);
            let first = found.first().ok_or_else(|| format!("{shown} matches nothing"))?;
            Ok(match first {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        }
        Extractor::Header(name) => {
            let v = headers.get(name).ok_or_else(|| format!("no {name} header"))?;
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| format!("header {name} is not text"))
        }
        Extractor::Regex(re) => {
            let text = String::from_utf8_lossy(body);
            let caps = re
                .captures(&text)
                .ok_or_else(|| format!("the body does not match /{}/", re.as_str()))?;
            let m = caps.get(1).or_else(|| caps.get(0)).map_or("", |m| m.as_str());
            Ok(m.to_owned())
        }
    }
}
