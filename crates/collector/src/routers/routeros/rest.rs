//! The RouterOS v7 REST API: `GET /rest/<menu>` with basic auth, JSON
//! objects whose values are all strings (`"true"`, `"1234"`).

use std::time::{Duration, SystemTime};

use pantau_config::RouterConfig;

use super::{Error, INTERFACE_PROPS, Menus, Row};
use crate::routers::reading::Reading;

/// A REST client for one router.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    user: String,
    password: String,
}

impl Client {
    /// A client for `r` (HTTPS when `r.tls`); each request bounded by `timeout`.
    pub fn new(r: &RouterConfig, timeout: Duration) -> Result<Self, Error> {
        let (host, port) = r.host_port().map_err(|why| Error::Address {
            address: r.address.clone(),
            why,
        })?;
        // reqwest is built without a default crypto provider; ring is ours.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("pantau/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if r.tls {
            // The same verification as API-SSL: ca_file, else the web roots,
            // or none with tls_verify: false.
            let mut tls = (*super::tls::client_config(r)?).clone();
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            b = b.tls_backend_preconfigured(tls);
        }
        let http = b
            .build()
            .map_err(|e| Error::Tls(format!("cannot set up the HTTP client: {e}")))?;
        let scheme = if r.tls { "https" } else { "http" };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        Ok(Self {
            http,
            base: format!("{scheme}://{host}:{port}/rest"),
            user: r.username.clone().unwrap_or_default(),
            password: r.password.clone().unwrap_or_default(),
        })
    }

    /// `GET /rest/<path>`: the rows, whether the menu answers with a list or
    /// one object; `None` when the menu does not exist (400/404).
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Option<Vec<Row>>, Error> {
        let url = format!("{}/{path}", self.base);
        let fail = |why: String| Error::Http { url: url.clone(), why };
        let full = reqwest::Url::parse_with_params(&url, query).map_err(|e| fail(e.to_string()))?;
        let resp = self
            .http
            .get(full)
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|e| fail(error_chain(&e)))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let body = resp.text().await.unwrap_or_default();
            return Err(Error::Login {
                user: self.user.clone(),
                message: format!("HTTP {status}: {}", message(&body)),
            });
        }
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::BAD_REQUEST {
            return Ok(None);
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(fail(format!("HTTP {status}: {}", message(&body))));
        }
        let body: serde_json::Value = resp.json().await.map_err(|e| fail(format!("not JSON: {e}")))?;
        match body {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|v| row(v).ok_or_else(|| fail(not_object(v))))
                .collect(),
            v @ serde_json::Value::Object(_) => row(&v).map(|r| vec![r]).ok_or_else(|| fail(not_object(&v))),
            v => Err(fail(not_object(&v))),
        }
        .map(Some)
    }

    async fn menu(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<Row>, Error> {
        self.get(path, query).await?.ok_or_else(|| Error::Http {
            url: format!("{}/{path}", self.base),
            why: "the router has no such menu (HTTP 400/404); is this RouterOS v7 with the www service on?".into(),
        })
    }

    /// Reads every menu of one poll.
    pub async fn poll(&self) -> Result<Reading, Error> {
        let at = SystemTime::now();
        let identity = self.menu("system/identity", &[]).await?.into_iter().next();
        let resource = self
            .menu("system/resource", &[])
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let interfaces = self.menu("interface", &[(".proplist", INTERFACE_PROPS)]).await?;
        let default_routes = self.menu("ip/route", &[("dst-address", "0.0.0.0/0")]).await?;
        let addresses = self.menu("ip/address", &[]).await?;
        let pppoe_clients = self.get("interface/pppoe-client", &[]).await?.unwrap_or_default();
        super::reading(
            at,
            Menus {
                identity,
                resource,
                interfaces,
                default_routes,
                addresses,
                pppoe_clients,
            },
        )
    }
}

/// A JSON object of scalars → a row (strings as they are, others as JSON text).
fn row(v: &serde_json::Value) -> Option<Row> {
    Some(
        v.as_object()?
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect(),
    )
}

fn not_object(v: &serde_json::Value) -> String {
    let mut s = v.to_string();
    s.truncate(200);
    format!("expected a JSON object or a list of them, got {s}")
}

/// RouterOS error bodies are `{"error":401,"message":"Unauthorized","detail":…}`.
fn message(body: &str) -> String {
    let v: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let pick = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
    };
    match (pick("message"), pick("detail")) {
        (Some(m), Some(d)) => format!("{m}: {d}"),
        (Some(m), None) => m,
        _ => body.chars().take(200).collect(),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
