//! `http_steps`: an ordered list of HTTP requests, each with its own
//! assertions, whose answers fill variables (`extract:`) that later steps
//! use as `{{name}}` in their URL, headers and body: log in, take the token,
//! call the API with it.
//!
//! Parsed once: every step's method, status codes, conditions and
//! extractions are checked, every `{{name}}` must be extracted by an earlier
//! step, and counts and sizes are bounded ([`MAX_STEPS`], [`MAX_VARIABLES`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::parse::{Problems, check_condition, tls_files};
use super::{ConditionConfig, HttpOptions, HttpUrl, RawTarget, TargetSpec, TlsFiles};
use crate::types::limits as l;

/// Most steps a target may have.
pub const MAX_STEPS: usize = 20;
/// Most variables all the steps of a target may extract.
pub const MAX_VARIABLES: usize = 32;
/// Largest value a variable may hold; a longer extracted value fails the step.
pub const MAX_VARIABLE_BYTES: usize = 4096;
/// Longest variable name.
pub const MAX_VARIABLE_NAME: usize = 64;

/// Fields an `http_steps` target takes.
pub(super) const FIELDS: &[&str] = &[
    "steps",
    "headers",
    "follow_redirects",
    "verify_tls",
    "reuse_connection",
    "ca_file",
    "client_cert",
    "client_key",
    "proxy",
    "resolve",
    "dns_server",
];

/// One step as YAML and JSON write it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Shown in results (`step 2 (me)`); `step N` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// GET when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `http://` or `https://`, then anything, `{{variables}}` included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Sent besides the target's `headers` (a step's own win); values may use `{{variables}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// May use `{{variables}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Accepted status codes; empty means 200–399.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_status: Vec<u16>,
    /// As an `http` target's: `response_time_below`, `body_contains`,
    /// `body_matches`, `json`, `header`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionConfig>,
    /// Variables this step sets, by name, for the steps after it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extract: BTreeMap<String, Extract>,
}

/// Where a variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Extract {
    /// The first value a JSONPath (RFC 9535) selects in the body; a string as
    /// is, anything else as JSON text.
    Json(String),
    /// A response header's value.
    Header(String),
    /// A regular expression on the body: its first capture group, or the
    /// whole match when it has none.
    Regex(String),
}

impl Extract {
    /// `json $.token`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Json(p) => format!("json {p}"),
            Self::Header(h) => format!("header {h}"),
            Self::Regex(r) => format!("regex /{r}/"),
        }
    }
}

/// One parsed step.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpStep {
    pub name: Option<String>,
    /// An HTTP method in capitals; GET when unset.
    pub method: Option<String>,
    /// Starts with `http://` or `https://`; a URL once its variables are set.
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// Within 100–599; empty means 200–399.
    pub expected_status: Vec<u16>,
    pub conditions: Vec<ConditionConfig>,
    pub extract: BTreeMap<String, Extract>,
}

impl HttpStep {
    /// `step 2 (me)` (1-based, as people count).
    pub fn label(&self, index: usize) -> String {
        match &self.name {
            Some(n) => format!("step {} ({n})", index + 1),
            None => format!("step {}", index + 1),
        }
    }
}

/// A multi-step HTTP check.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpStepsTarget {
    /// 1–[`MAX_STEPS`], run in order; the first that fails ends the check.
    pub steps: Vec<HttpStep>,
    /// Sent on every step (a step's own header of the same name wins).
    pub headers: BTreeMap<String, String>,
    pub follow_redirects: Option<bool>,
    pub verify_tls: Option<bool>,
    pub reuse_connection: Option<bool>,
    pub tls: TlsFiles,
    pub options: HttpOptions,
}

/// The `{{name}}` references of `text`, or why it does not parse.
pub fn references(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "has a `{{` without its `}}`".to_owned())?;
        let name = after[..end].trim();
        if !is_variable_name(name) {
            return Err(format!(
                "`{{{{{}}}}}` is not a variable: names are letters, digits and `_`, at most {MAX_VARIABLE_NAME} bytes",
                crate::types::quote(name)
            ));
        }
        out.push(name);
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// `text` with every `{{name}}` replaced by its value; `Err` names the
/// first variable without one.
pub fn render(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("a `{{` without its `}}`".into());
        };
        let name = after[..end].trim();
        out.push_str(vars.get(name).ok_or_else(|| name.to_owned())?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_variable_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= MAX_VARIABLE_NAME
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !n.as_bytes()[0].is_ascii_digit()
}

/// The typed spec of an `http_steps` target, or `None` with the problems added.
pub(super) fn parse(r: &RawTarget, p: &mut Problems<'_>) -> Option<TargetSpec> {
    let tls = tls_files(r, p);
    let options = super::http_options::parse(r, p);
    if r.steps.is_empty() {
        p.add(
            "steps",
            "",
            "is required for an http_steps target: at least one step (url, method, …)",
        );
        return None;
    }
    if r.steps.len() > MAX_STEPS {
        p.add(
            "steps",
            &format!("{} steps", r.steps.len()),
            format!("must have at most {MAX_STEPS} steps"),
        );
        return None;
    }
    let mut known = BTreeSet::new();
    let mut steps = Vec::with_capacity(r.steps.len());
    let mut ok = true;
    for (i, s) in r.steps.iter().enumerate() {
        match step(&format!("steps[{i}]"), s, &mut known, p) {
            Some(s) => steps.push(s),
            None => ok = false,
        }
    }
    for (k, v) in &r.headers {
        if let Err(why) = references(v) {
            p.add(&format!("headers.{}", crate::types::quote(k)), "***", why);
            ok = false;
        } else if references(v).is_ok_and(|refs| !refs.is_empty()) {
            p.add(
                &format!("headers.{}", crate::types::quote(k)),
                "***",
                "a target-wide header cannot use variables (no step has run before it): set it on the step",
            );
            ok = false;
        }
    }
    if known.len() > MAX_VARIABLES {
        p.add(
            "steps",
            &format!("{} variables", known.len()),
            format!("must extract at most {MAX_VARIABLES} variables in all"),
        );
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(TargetSpec::HttpSteps(Box::new(HttpStepsTarget {
        steps,
        headers: r.headers.clone(),
        follow_redirects: r.follow_redirects,
        verify_tls: r.verify_tls,
        reuse_connection: r.reuse_connection,
        tls: tls?,
        options: options?,
    })))
}

/// One step, its keys under `key` (`steps[1]`); the variables it extracts
/// join `known`.
fn step(key: &str, s: &RawStep, known: &mut BTreeSet<String>, p: &mut Problems<'_>) -> Option<HttpStep> {
    let before = p.len();
    let mut text = |field: &str, v: &str, max: usize, secret: bool| {
        if v.len() > max {
            let shown = if secret { "***" } else { v };
            p.add(&format!("{key}.{field}"), shown, format!("must be at most {max} bytes"));
            false
        } else {
            true
        }
    };
    let mut sized = true;
    if let Some(n) = &s.name {
        sized &= text("name", n, l::NAME, false);
    }
    if let Some(u) = &s.url {
        sized &= text("url", u, l::URL, false);
    }
    if let Some(b) = &s.body {
        sized &= text("body", b, l::BODY, false);
    }
    for (k, v) in &s.headers {
        sized &= text("headers", k, l::HEADER_NAME, false);
        sized &= text(&format!("headers.{}", crate::types::quote(k)), v, l::HEADER_VALUE, true);
    }
    for (field, n) in [
        ("headers", s.headers.len()),
        ("conditions", s.conditions.len()),
        ("expected_status", s.expected_status.len()),
        ("extract", s.extract.len()),
    ] {
        if n > l::ENTRIES {
            p.add(
                &format!("{key}.{field}"),
                &format!("{n} entries"),
                format!("must have at most {} entries", l::ENTRIES),
            );
            sized = false;
        }
    }
    if !sized {
        return None;
    }
    if s.name.as_deref() == Some("") {
        p.add(
            &format!("{key}.name"),
            "",
            "must not be empty: leave it out to show `step N`",
        );
    }
    let Some(url) = s.url.clone() else {
        p.add(&format!("{key}.url"), "", "is required: the URL this step requests");
        return None;
    };
    // The URL with each variable replaced by a stand-in must be an http(s) URL.
    let mut used = Vec::new();
    match references(&url) {
        Err(why) => p.add(&format!("{key}.url"), &url, why),
        Ok(refs) => {
            used.extend(refs.iter().map(|r| ((*r).to_owned(), "url".to_owned())));
            if url.starts_with("http://") || url.starts_with("https://") {
                let stand_in: BTreeMap<String, String> = refs.iter().map(|r| ((*r).to_owned(), "x".into())).collect();
                if let Ok(u) = render(&url, &stand_in)
                    && let Err(why) = u.parse::<HttpUrl>()
                {
                    p.add(&format!("{key}.url"), &url, why);
                }
            } else {
                p.add(
                    &format!("{key}.url"),
                    &url,
                    "must start with http:// or https:// (variables may follow)",
                );
            }
        }
    }
    if let Some(m) = &s.method
        && (m.is_empty() || m.len() > 16 || !m.bytes().all(|b| b.is_ascii_uppercase()))
    {
        p.add(
            &format!("{key}.method"),
            m,
            "must be an HTTP method in capitals, e.g. GET, HEAD, POST",
        );
    }
    for (k, v) in &s.headers {
        let field = format!("{key}.headers.{}", crate::types::quote(k));
        if reqwest_free_header_name(k).is_err() {
            p.add(
                &format!("{key}.headers"),
                k,
                "is not a header name (letters, digits, `-`)",
            );
        }
        match references(v) {
            Err(why) => p.add(&field, "***", why),
            Ok(refs) => used.extend(refs.iter().map(|r| ((*r).to_owned(), field.clone()))),
        }
    }
    if let Some(b) = &s.body {
        match references(b) {
            Err(why) => p.add(&format!("{key}.body"), "", why),
            Ok(refs) => used.extend(refs.iter().map(|r| ((*r).to_owned(), format!("{key}.body")))),
        }
    }
    for (name, field) in used {
        if !known.contains(&name) {
            let field = if field == "url" { format!("{key}.url") } else { field };
            p.add(
                &field,
                &format!("{{{{{name}}}}}"),
                format!("uses `{name}`, which no earlier step extracts"),
            );
        }
    }
    for s in &s.expected_status {
        if !(100..=599).contains(s) {
            p.add(
                &format!("{key}.expected_status"),
                &s.to_string(),
                "must hold HTTP status codes between 100 and 599",
            );
        }
    }
    for (i, c) in s.conditions.iter().enumerate() {
        let field = format!("{key}.conditions[{i}]");
        if let Some(why) = check_condition(c) {
            p.add(&field, &format!("{c:?}"), why);
        } else if condition_too_long(c) {
            p.add(&field, "", format!("its texts must be at most {} bytes", l::PAYLOAD));
        }
    }
    for (name, e) in &s.extract {
        let field = format!("{key}.extract.{}", crate::types::quote(name));
        if !is_variable_name(name) {
            p.add(
                &format!("{key}.extract"),
                name,
                format!(
                    "is not a variable name: letters, digits and `_`, not starting with a digit, at most {MAX_VARIABLE_NAME} bytes"
                ),
            );
            continue;
        }
        let (kind, text) = match e {
            Extract::Json(t) => ("json", t),
            Extract::Header(t) => ("header", t),
            Extract::Regex(t) => ("regex", t),
        };
        if text.len() > l::PAYLOAD {
            p.add(
                &format!("{field}.{kind}"),
                "",
                format!("must be at most {} bytes", l::PAYLOAD),
            );
            continue;
        }
        let why = match e {
            Extract::Json(path) => serde_json_path::JsonPath::parse(path)
                .err()
                .map(|e| format!("is not a JSONPath: {e}")),
            Extract::Header(h) => reqwest_free_header_name(h)
                .err()
                .map(|()| "is not a header name (letters, digits, `-`)".to_owned()),
            Extract::Regex(re) => regex::Regex::new(re)
                .err()
                .map(|e| format!("is not a regular expression: {e}")),
        };
        if let Some(why) = why {
            p.add(&format!("{field}.{kind}"), text, why);
        }
        known.insert(name.clone());
    }
    (p.len() == before).then(|| HttpStep {
        name: s.name.clone(),
        method: s.method.clone(),
        url,
        headers: s.headers.clone(),
        body: s.body.clone(),
        expected_status: s.expected_status.clone(),
        conditions: s.conditions.clone(),
        extract: s.extract.clone(),
    })
}

/// A header name: 1–128 bytes of RFC 9110 token characters.
fn reqwest_free_header_name(n: &str) -> Result<(), ()> {
    let ok = !n.is_empty()
        && n.len() <= l::HEADER_NAME
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok { Ok(()) } else { Err(()) }
}

fn condition_too_long(c: &ConditionConfig) -> bool {
    let long = |s: &str| s.len() > l::PAYLOAD;
    match c {
        ConditionConfig::BodyContains(v) | ConditionConfig::BodyMatches(v) => long(v),
        ConditionConfig::Json(j) => long(&j.path) || j.equals.as_deref().is_some_and(long),
        ConditionConfig::Header(h) => {
            long(&h.name) || h.equals.as_deref().is_some_and(long) || h.contains.as_deref().is_some_and(long)
        }
        ConditionConfig::ResponseTimeBelow(_) => false,
    }
}

impl From<HttpStep> for RawStep {
    fn from(s: HttpStep) -> Self {
        Self {
            name: s.name,
            method: s.method,
            url: Some(s.url),
            headers: s.headers,
            body: s.body,
            expected_status: s.expected_status,
            conditions: s.conditions,
            extract: s.extract,
        }
    }
}

pub(super) fn to_raw(x: HttpStepsTarget, r: &mut RawTarget) {
    r.steps = x.steps.into_iter().map(RawStep::from).collect();
    r.headers = x.headers;
    r.follow_redirects = x.follow_redirects;
    r.verify_tls = x.verify_tls;
    r.reuse_connection = x.reuse_connection;
    r.set_tls(x.tls);
    super::http_options::to_raw(x.options, r);
}

impl HttpStepsTarget {
    /// Credential headers (the target's and each step's) become `***`, as
    /// does the proxy's password.
    pub fn mask(&mut self) {
        for (name, value) in self
            .headers
            .iter_mut()
            .chain(self.steps.iter_mut().flat_map(|s| s.headers.iter_mut()))
        {
            if super::is_secret_header(name) {
                "***".clone_into(value);
            }
        }
        self.options = self.options.masked();
    }
}

#[cfg(test)]
#[path = "steps_tests.rs"]
mod tests;
