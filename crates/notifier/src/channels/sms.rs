//! A generic SMS HTTP gateway, one delivery per recipient: `<method> <url>`
//! with the configured `body` (default `{"to": "{{ to }}", "message":
//! "{{ message }}"}`), each text value a template seeing `to`, `message`,
//! `title`, `severity` and `status`, sent as JSON, as a form, or (`get`) as
//! query parameters; the optional `auth_header` and an `Idempotency-Key`
//! that stays the same across retries go with it.

use async_trait::async_trait;
use minijinja::Environment;
use pantau_config::{BodyFormat, ChannelConfig, HttpMethod};
use serde_json::{Map, Value, json};

use super::{Channel, Outcome, Outgoing};

/// The longest message sent (about ten concatenated SMS).
pub const MAX_MESSAGE: usize = 1600;

pub struct Sms {
    http: reqwest::Client,
    url: String,
    method: HttpMethod,
    format: BodyFormat,
    body: Map<String, Value>,
    header: Option<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    env: Environment<'static>,
}

/// The body used when none is configured.
pub fn default_body() -> Map<String, Value> {
    let Value::Object(m) = json!({"to": "{{ to }}", "message": "{{ message }}"}) else {
        unreachable!("a literal object")
    };
    m
}

/// Every template in `v`, with the dotted key naming it.
fn templates<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((prefix.to_owned(), s)),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                templates(&format!("{prefix}[{i}]"), x, out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                templates(&format!("{prefix}.{k}"), x, out);
            }
        }
        _ => {}
    }
}

impl Sms {
    pub fn new(http: reqwest::Client, c: &ChannelConfig) -> Result<Self, String> {
        let url = c.url.clone().ok_or("url is required")?;
        let body = c.body.clone().unwrap_or_else(default_body);
        let env = Environment::new();
        let mut all = Vec::new();
        let whole = Value::Object(body.clone());
        templates("body", &whole, &mut all);
        let sample = minijinja::context! {
            to => "+10000000", message => "m", title => "t", severity => "info", status => "firing",
        };
        for (key, t) in all {
            env.render_str(t, &sample)
                .map_err(|e| format!("{key}: the template does not parse: {e}"))?;
        }
        let header = match &c.auth_header {
            None => None,
            Some(h) => {
                let (name, value) = h.split_once(':').ok_or("auth_header must be `Name: value`")?;
                let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| "auth_header has an invalid header name")?;
                let mut value = reqwest::header::HeaderValue::from_str(value.trim())
                    .map_err(|_| "auth_header has an invalid header value")?;
                value.set_sensitive(true);
                Some((name, value))
            }
        };
        Ok(Self {
            http,
            url,
            method: c.method.unwrap_or_default(),
            format: c.body_format.unwrap_or_default(),
            body,
            header,
            env,
        })
    }

    /// `v` with every text rendered.
    fn render(&self, v: &Value, ctx: &minijinja::Value) -> Result<Value, minijinja::Error> {
        Ok(match v {
            Value::String(s) => Value::String(self.env.render_str(s, ctx)?),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.render(x, ctx)).collect::<Result<_, _>>()?),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.render(x, ctx)?)))
                    .collect::<Result<_, minijinja::Error>>()?,
            ),
            other => other.clone(),
        })
    }
}

/// A flat field as text (form and query values).
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Channel for Sms {
    async fn send(&self, out: Outgoing<'_>) -> Outcome {
        if out.recipient.is_empty() {
            return Outcome::permanent(0, "no recipient");
        }
        let n = out.notification;
        let ctx = minijinja::context! {
            to => out.recipient,
            message => super::chat::truncate(out.text, MAX_MESSAGE),
            title => &n.title,
            severity => &n.severity,
            status => &n.status,
        };
        let body = match self.render(&Value::Object(self.body.clone()), &ctx) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Outcome::permanent(0, "the body is not an object"),
            Err(e) => return Outcome::permanent(0, format!("the body template fails: {e}")),
        };
        let pairs: Vec<(String, String)> = body.iter().map(|(k, v)| (k.clone(), scalar(v))).collect();
        let mut req = match self.method {
            HttpMethod::Get => match super::push::with_query(&self.url, &pairs) {
                Some(u) => self.http.get(u),
                None => return Outcome::permanent(0, "the sms url is not valid"),
            },
            HttpMethod::Post | HttpMethod::Put => {
                let r = if self.method == HttpMethod::Put {
                    self.http.put(&self.url)
                } else {
                    self.http.post(&self.url)
                };
                match self.format {
                    BodyFormat::Json => r.json(&body),
                    BodyFormat::Form => r
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(super::push::encode_form(&pairs)),
                }
            }
        };
        req = req.header(super::webhook::IDEMPOTENCY_HEADER, out.idempotency_key);
        if let Some((name, value)) = &self.header {
            req = req.header(name.clone(), value.clone());
        }
        super::send_request(req).await.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(extra: &Value) -> ChannelConfig {
        let mut c = json!({"name": "sms", "type": "sms", "url": "http://127.0.0.1:9/send", "to": ["+6281100000001"]});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        serde_json::from_value(c).unwrap()
    }

    #[test]
    fn broken_templates_are_refused_naming_the_field() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let Err(e) = Sms::new(
            http.clone(),
            &channel(&json!({"body": {"to": "{{ to }}", "text": "{% if %}"}})),
        ) else {
            panic!("a broken template was accepted");
        };
        assert!(e.starts_with("body.text: the template does not parse"), "{e}");
        let Err(e) = Sms::new(http.clone(), &channel(&json!({"auth_header": "Bad Name: x"}))) else {
            panic!("a bad header was accepted");
        };
        assert!(e.contains("header name"), "{e}");
        assert!(Sms::new(http, &channel(&json!({"auth_header": "X-Api-Key: k1"}))).is_ok());
    }

    #[test]
    fn scalars_render_as_text() {
        assert_eq!(scalar(&json!("a")), "a");
        assert_eq!(scalar(&json!(12)), "12");
        assert_eq!(scalar(&json!(true)), "true");
    }
}
