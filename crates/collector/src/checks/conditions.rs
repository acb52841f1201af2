//! Conditions on an HTTP response beyond its status code: response time,
//! body text or regular expression, a JSON path's value, a header.

use std::time::Duration;

use pantau_config::{ConditionConfig, HeaderCondition, JsonCondition};
use regex::Regex;
use serde_json_path::JsonPath;

/// How a JSON value is compared.
#[derive(Debug, Clone)]
pub enum JsonCmp {
    Equals(String),
    GreaterThan(f64),
    LessThan(f64),
    Exists(bool),
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum Condition {
    ResponseTimeBelow(Duration),
    BodyContains(String),
    BodyMatches(Regex),
    Json {
        path: JsonPath,
        shown: String,
        cmp: JsonCmp,
    },
    Header {
        name: String,
        equals: Option<String>,
        contains: Option<String>,
    },
}

impl Condition {
    /// Compiles a validated condition; `Err` says what is wrong.
    pub fn compile(c: &ConditionConfig) -> Result<Self, String> {
        Ok(match c {
            ConditionConfig::ResponseTimeBelow(d) => Self::ResponseTimeBelow(*d),
            ConditionConfig::BodyContains(s) => Self::BodyContains(s.clone()),
            ConditionConfig::BodyMatches(re) => Self::BodyMatches(Regex::new(re).map_err(|e| e.to_string())?),
            ConditionConfig::Json(JsonCondition {
                path,
                equals,
                greater_than,
                less_than,
                exists,
            }) => {
                let cmp = match (equals, greater_than, less_than, exists) {
                    (Some(e), None, None, None) => JsonCmp::Equals(e.clone()),
                    (None, Some(g), None, None) => JsonCmp::GreaterThan(*g),
                    (None, None, Some(l), None) => JsonCmp::LessThan(*l),
                    (None, None, None, Some(x)) => JsonCmp::Exists(*x),
                    _ => return Err("json needs exactly one of equals, greater_than, less_than, exists".into()),
                };
                Self::Json {
                    path: JsonPath::parse(path).map_err(|e| e.to_string())?,
                    shown: path.clone(),
                    cmp,
                }
            }
            ConditionConfig::Header(HeaderCondition { name, equals, contains }) => Self::Header {
                name: name.clone(),
                equals: equals.clone(),
                contains: contains.clone(),
            },
        })
    }

    /// `Err` with a readable reason when the response does not meet it.
    pub fn check(&self, latency: Duration, headers: &reqwest::header::HeaderMap, body: &[u8]) -> Result<(), String> {
        match self {
            Self::ResponseTimeBelow(max) => {
                if latency < *max {
                    Ok(())
                } else {
                    Err(format!(
                        "response took {:.0} ms, limit {:.0} ms",
                        latency.as_secs_f64() * 1e3,
                        max.as_secs_f64() * 1e3
                    ))
                }
            }
            Self::BodyContains(text) => {
                if String::from_utf8_lossy(body).contains(text.as_str()) {
                    Ok(())
                } else {
                    Err(format!("body does not contain {text:?}"))
                }
            }
            Self::BodyMatches(re) => {
                if re.is_match(&String::from_utf8_lossy(body)) {
                    Ok(())
                } else {
                    Err(format!("body does not match /{}/", re.as_str()))
                }
            }
            Self::Json { path, shown, cmp } => check_json(path, shown, cmp, body),
            Self::Header { name, equals, contains } => {
                let got = headers
                    .get(name.as_str())
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                match (got, equals, contains) {
                    (None, _, _) => Err(format!("no {name} header")),
                    (Some(v), Some(want), _) if v != *want => Err(format!("header {name} is {v:?}, expected {want:?}")),
                    (Some(v), _, Some(part)) if !v.contains(part.as_str()) => {
                        Err(format!("header {name} is {v:?}, which lacks {part:?}"))
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

fn check_json(path: &JsonPath, shown: &str, cmp: &JsonCmp, body: &[u8]) -> Result<(), String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON ({e}), so {shown} cannot be read"))?;
    let found = path.query(&doc).all();
    if let JsonCmp::Exists(want) = cmp {
        return if found.is_empty() != *want {
            Ok(())
        } else if *want {
            Err(format!("{shown} matches nothing"))
        } else {
            Err(format!("{shown} exists"))
        };
    }
    let Some(value) = found.first() else {
        return Err(format!("{shown} matches nothing"));
    };
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match cmp {
        JsonCmp::Equals(want) if text == *want => Ok(()),
        JsonCmp::Equals(want) => Err(format!("{shown} is {text:?}, expected {want:?}")),
        JsonCmp::GreaterThan(n) | JsonCmp::LessThan(n) => {
            let v = value
                .as_f64()
                .or_else(|| text.parse().ok())
                .ok_or_else(|| format!("{shown} is {text:?}, not a number"))?;
            let (ok, word) = match cmp {
                JsonCmp::GreaterThan(_) => (v > *n, "above"),
                _ => (v < *n, "below"),
            };
            if ok {
                Ok(())
            } else {
                Err(format!("{shown} is {v}, expected {word} {n}"))
            }
        }
        JsonCmp::Exists(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(path: &str, equals: Option<&str>, gt: Option<f64>) -> Condition {
        Condition::compile(&ConditionConfig::Json(JsonCondition {
            path: path.into(),
            equals: equals.map(Into::into),
            greater_than: gt,
            ..Default::default()
        }))
        .unwrap()
    }

    #[test]
    fn json_conditions() {
        let body = br#"{"status":"ok","db":{"latency_ms":12,"up":true}}"#;
        let h = reqwest::header::HeaderMap::new();
        let d = Duration::ZERO;
        assert!(json("$.status", Some("ok"), None).check(d, &h, body).is_ok());
        assert!(json("$.db.up", Some("true"), None).check(d, &h, body).is_ok());
        let e = json("$.status", Some("degraded"), None).check(d, &h, body).unwrap_err();
        assert!(e.contains("expected \"degraded\""), "{e}");
        assert!(json("$.db.latency_ms", None, Some(10.0)).check(d, &h, body).is_ok());
        assert!(json("$.db.latency_ms", None, Some(20.0)).check(d, &h, body).is_err());
        assert!(
            json("$.missing", Some("x"), None)
                .check(d, &h, body)
                .unwrap_err()
                .contains("matches nothing")
        );
        assert!(
            json("$.status", Some("ok"), None)
                .check(d, &h, b"<html>")
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn body_header_and_time() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        let re = Condition::compile(&ConditionConfig::BodyMatches("^ok\\b".into())).unwrap();
        assert!(re.check(Duration::ZERO, &h, b"ok then").is_ok());
        assert!(re.check(Duration::ZERO, &h, b"not ok").is_err());
        let hc = Condition::compile(&ConditionConfig::Header(HeaderCondition {
            name: "Content-Type".into(),
            contains: Some("json".into()),
            equals: None,
        }))
        .unwrap();
        assert!(hc.check(Duration::ZERO, &h, b"").is_ok());
        let t = Condition::ResponseTimeBelow(Duration::from_millis(100));
        assert!(
            t.check(Duration::from_millis(150), &h, b"")
                .unwrap_err()
                .contains("150 ms")
        );
    }
}
