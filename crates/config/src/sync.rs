//! The `sync` section: multi-location instances (primary, dependent,
//! standalone), their heartbeats, configuration sync, consensus and failover.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Invalid, duration, text};

/// The role of this instance among locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceRole {
    /// Neither primary nor dependent: no sync API runs.
    #[default]
    Standalone,
    /// Starts as primary (it still needs the lease when NATS is configured).
    Primary,
    /// Follows a primary (`PRIMARY_SYNC_URL`).
    Dependent,
}

/// Multi-location sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Serve the sync API (`ENABLE_SYNC_API`); with `role: standalone` this
    /// makes the instance primary.
    pub enabled: bool,
    /// `standalone`, `primary` or `dependent`; `dependent` when only
    /// `primary_url` is set, `primary` when only `enabled` is.
    pub role: InstanceRole,
    /// gRPC port of the sync API (`SYNC_API_PORT`).
    pub grpc_port: u16,
    /// Admin port (`/metrics`, `/healthz`, `/readyz`) of `pantau sync-api` alone.
    pub admin_port: u16,
    /// The primary's sync API, for a dependent (`PRIMARY_SYNC_URL`), e.g. `http://10.0.0.1:50055`.
    pub primary_url: Option<String>,
    /// Where other instances reach this instance's sync API after a takeover;
    /// `http://127.0.0.1:<grpc_port>` when unset.
    pub public_url: Option<String>,
    /// Let instance tokens travel over cleartext `http://` to a primary that
    /// is not on loopback (and a primary hand them to such callers). Off:
    /// a dependent refuses such a `primary_url`, and a primary without
    /// `grpc.tls_cert_file` registers only loopback callers.
    pub allow_plaintext: bool,
    /// The join token: the primary requires it on `Register` when set, and a
    /// dependent presents it. Never logged.
    #[serde(deserialize_with = "text::option")]
    pub token: Option<String>,
    /// Instances in the order they take over (`FAILOVER_ORDER`, comma-separated).
    /// When set, only listed instances may become primary; the first waits least.
    #[serde(deserialize_with = "comma_list")]
    pub failover_order: Vec<String>,
    /// This instance's own place in the failover order, 0 first (`FAILOVER_ORDER`
    /// given as a number, as the original specification does); used when
    /// `failover_order` does not name this instance.
    pub failover_rank: Option<u32>,
    /// How often a dependent checks for new configuration (`SYNC_INTERVAL`).
    #[serde(with = "duration")]
    pub sync_interval: Duration,
    /// How often instances send heartbeats and the primary renews its lease
    /// (`HEARTBEAT_INTERVAL`); a primary that stops is replaced within two.
    #[serde(with = "duration")]
    pub heartbeat_interval: Duration,
    /// The local collector's gRPC address, where synced targets are applied.
    pub collector_url: String,
    /// NATS key-value bucket holding the primary lease.
    pub lease_bucket: String,
    /// Length of a consensus window.
    #[serde(with = "duration")]
    pub consensus_window: Duration,
    /// How long after a window ends its consensus is published (late results).
    #[serde(with = "duration")]
    pub consensus_delay: Duration,
    /// How long per-location results and consensus windows are kept.
    #[serde(with = "duration")]
    pub retention: Duration,
    /// Most results a dependent buffers on disk while the primary is away;
    /// beyond it the oldest are dropped (and counted).
    pub buffer_max: u64,
    /// Most results per push.
    pub batch_size: u32,
    /// How long an instance token is valid.
    #[serde(with = "duration")]
    pub token_ttl: Duration,
    /// Missed heartbeats after which an instance is inactive.
    pub inactive_after: u32,
    /// Missed heartbeats after which an instance has failed.
    pub failed_after: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            role: InstanceRole::Standalone,
            grpc_port: 50055,
            admin_port: 9105,
            primary_url: None,
            public_url: None,
            allow_plaintext: false,
            token: None,
            failover_order: Vec::new(),
            failover_rank: None,
            sync_interval: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(10),
            collector_url: "http://127.0.0.1:50051".to_owned(),
            lease_bucket: "pantau_sync".to_owned(),
            consensus_window: Duration::from_secs(60),
            consensus_delay: Duration::from_secs(15),
            retention: Duration::from_secs(24 * 3600),
            buffer_max: 100_000,
            batch_size: 500,
            token_ttl: Duration::from_secs(30 * 24 * 3600),
            inactive_after: 3,
            failed_after: 10,
        }
    }
}

impl SyncConfig {
    /// The role this instance starts in, from `role`, `enabled` and `primary_url`.
    pub fn effective_role(&self) -> InstanceRole {
        match self.role {
            InstanceRole::Standalone if self.primary_url.is_some() => InstanceRole::Dependent,
            InstanceRole::Standalone if self.enabled => InstanceRole::Primary,
            r => r,
        }
    }

    /// Whether the sync API runs at all (not standalone).
    pub fn active(&self) -> bool {
        self.effective_role() != InstanceRole::Standalone
    }

    /// Where others reach this instance's sync API.
    pub fn public_endpoint(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", self.grpc_port))
    }
}

/// A list written as YAML sequence or as `a,b,c`.
fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Names;
    impl<'de> serde::de::Visitor<'de> for Names {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("instance names as a list or as `a,b,c` (a number is `sync.failover_rank`)")
        }

        fn visit_str<E: serde::de::Error>(self, t: &str) -> Result<Self::Value, E> {
            Ok(t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect())
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(name) = seq.next_element::<String>()? {
                out.push(name);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Names)
}

fn is_url(u: &str) -> bool {
    (u.starts_with("http://") || u.starts_with("https://")) && u.len() > 8
}

/// Every problem of the `sync` section and of `gateway.sync_url`.
pub(super) fn config_problems(c: &super::Config) -> Vec<Invalid> {
    let mut out = problems(&c.sync);
    if !is_url(&c.gateway.sync_url) {
        out.push(Invalid {
            key: "gateway.sync_url".into(),
            value: super::mask_url_password(&c.gateway.sync_url),
            allowed: "must be an http:// or https:// URL such as http://127.0.0.1:50055".into(),
        });
    }
    out
}

/// Every problem of the `sync` section.
pub(super) fn problems(s: &SyncConfig) -> Vec<Invalid> {
    let mut out = Vec::new();
    let mut add = |key: String, value: String, allowed: &str| {
        out.push(Invalid {
            key,
            value,
            allowed: allowed.to_owned(),
        });
    };
    let min = Duration::from_millis(200);
    for (key, d) in [
        ("sync.sync_interval", s.sync_interval),
        ("sync.heartbeat_interval", s.heartbeat_interval),
        ("sync.consensus_window", s.consensus_window),
    ] {
        if d < min {
            add(key.into(), duration::format(d), "must be at least 200ms");
        }
    }
    if s.retention < s.consensus_window {
        add(
            "sync.retention".into(),
            duration::format(s.retention),
            "must be at least sync.consensus_window",
        );
    }
    if s.role == InstanceRole::Dependent && s.primary_url.is_none() {
        add(
            "sync.primary_url".into(),
            String::new(),
            "is required when sync.role is `dependent` (PRIMARY_SYNC_URL)",
        );
    }
    for (key, url) in [
        ("sync.primary_url", s.primary_url.as_deref()),
        ("sync.public_url", s.public_url.as_deref()),
        ("sync.collector_url", Some(s.collector_url.as_str())),
    ] {
        if let Some(u) = url
            && !is_url(u)
        {
            add(
                key.into(),
                super::mask_url_password(u),
                "must be an http:// or https:// URL such as http://127.0.0.1:50055",
            );
        }
    }
    if let Some(u) = &s.primary_url
        && u.starts_with("http://")
        && !s.allow_plaintext
        && !super::grpc::is_loopback_url(u)
    {
        add(
            "sync.primary_url".into(),
            super::mask_url_password(u),
            "must be https:// (instance tokens never travel in cleartext), or set sync.allow_plaintext: true",
        );
    }
    for (i, name) in s.failover_order.iter().enumerate() {
        if !super::validate::is_subject_token(name) {
            add(
                format!("sync.failover_order[{i}]"),
                name.clone(),
                "must be an instance name: letters, digits, `-` or `_`",
            );
        }
    }
    if !super::validate::is_subject_token(&s.lease_bucket) {
        add(
            "sync.lease_bucket".into(),
            s.lease_bucket.clone(),
            "must be a bucket name of letters, digits, `-` or `_`",
        );
    }
    if s.buffer_max == 0 {
        add("sync.buffer_max".into(), "0".into(), "must be greater than 0");
    }
    if s.batch_size == 0 || s.batch_size > 10_000 {
        add(
            "sync.batch_size".into(),
            s.batch_size.to_string(),
            "must be between 1 and 10000",
        );
    }
    if s.token_ttl < Duration::from_secs(60) {
        add(
            "sync.token_ttl".into(),
            duration::format(s.token_ttl),
            "must be at least 1m",
        );
    }
    if s.inactive_after == 0 || s.failed_after <= s.inactive_after {
        add(
            "sync.failed_after".into(),
            s.failed_after.to_string(),
            "sync.inactive_after must be at least 1 and sync.failed_after greater than it",
        );
    }
    if let Some(t) = &s.token
        && t.len() < 16
    {
        add("sync.token".into(), "***".into(), "must be at least 16 characters");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_follows_the_original_switches() {
        let mut s = SyncConfig::default();
        assert_eq!(s.effective_role(), InstanceRole::Standalone);
        assert!(!s.active());
        s.enabled = true;
        assert_eq!(s.effective_role(), InstanceRole::Primary);
        s.primary_url = Some("http://127.0.0.1:50055".into());
        assert_eq!(s.effective_role(), InstanceRole::Dependent);
        s.role = InstanceRole::Primary;
        assert_eq!(s.effective_role(), InstanceRole::Primary);
    }

    #[test]
    fn bad_values_name_their_key() {
        let s = SyncConfig {
            role: InstanceRole::Dependent,
            collector_url: "127.0.0.1:50051".into(),
            batch_size: 0,
            token: Some("short".into()),
            ..SyncConfig::default()
        };
        let keys: Vec<String> = problems(&s).into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "sync.primary_url",
                "sync.collector_url",
                "sync.batch_size",
                "sync.token"
            ]
        );
        assert!(problems(&SyncConfig::default()).is_empty());
    }
}
