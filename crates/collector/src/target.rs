//! A target as the collector runs it, built from a validated [`TargetConfig`].

use std::collections::BTreeMap;
use std::time::Duration;

use pantau_core::config::{CheckType, CollectorConfig, TargetConfig};
use pantau_core::time::to_duration;
use pantau_proto::v1;

/// What a check does, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    Http {
        url: reqwest::Url,
        /// Accepted status codes; empty means 200–399.
        expected_status: Vec<u16>,
    },
    Tcp {
        /// `host:port`.
        address: String,
    },
}

/// One target to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub spec: Spec,
    pub interval: Duration,
    pub timeout: Duration,
    pub labels: BTreeMap<String, String>,
}

/// A target the configuration describes but the collector cannot use.
#[derive(Debug, thiserror::Error)]
#[error("`collector.targets[{index}].{field}` = `{value}`: {reason}")]
pub struct TargetError {
    pub index: usize,
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

impl Target {
    /// Builds every configured target; config validation has already run.
    pub fn from_config(cfg: &CollectorConfig) -> Result<Vec<Self>, TargetError> {
        cfg.targets
            .iter()
            .enumerate()
            .map(|(i, t)| Self::one(i, t, cfg))
            .collect()
    }

    fn one(index: usize, t: &TargetConfig, cfg: &CollectorConfig) -> Result<Self, TargetError> {
        let missing = |field: &'static str| TargetError {
            index,
            field,
            value: String::new(),
            reason: format!("is required for a {} target", t.check.as_str()),
        };
        let spec = match t.check {
            CheckType::Http => {
                let raw = t.url.as_deref().ok_or_else(|| missing("url"))?;
                let url = reqwest::Url::parse(raw).map_err(|e| TargetError {
                    index,
                    field: "url",
                    value: raw.to_owned(),
                    reason: e.to_string(),
                })?;
                Spec::Http {
                    url,
                    expected_status: t.expected_status.clone(),
                }
            }
            CheckType::Tcp => Spec::Tcp {
                address: t.address.clone().ok_or_else(|| missing("address"))?,
            },
        };
        Ok(Self {
            id: t.id.clone(),
            name: t.name.clone().unwrap_or_else(|| t.id.clone()),
            spec,
            interval: t.interval.unwrap_or(cfg.interval),
            timeout: t.timeout.unwrap_or(cfg.timeout),
            labels: t.labels.clone(),
        })
    }

    pub fn kind(&self) -> v1::CheckKind {
        match self.spec {
            Spec::Http { .. } => v1::CheckKind::Http,
            Spec::Tcp { .. } => v1::CheckKind::Tcp,
        }
    }

    /// `http` or `tcp`, for metric labels and logs.
    pub fn kind_label(&self) -> &'static str {
        match self.spec {
            Spec::Http { .. } => "http",
            Spec::Tcp { .. } => "tcp",
        }
    }

    /// The URL or `host:port` checked.
    pub fn address(&self) -> String {
        match &self.spec {
            Spec::Http { url, .. } => url.to_string(),
            Spec::Tcp { address } => address.clone(),
        }
    }

    pub fn to_proto(&self) -> v1::Target {
        v1::Target {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind().into(),
            address: self.address(),
            interval: Some(to_duration(self.interval)),
            timeout: Some(to_duration(self.timeout)),
            labels: self.labels.clone().into_iter().collect(),
            expected_status: match &self.spec {
                Spec::Http { expected_status, .. } => expected_status.iter().map(|s| u32::from(*s)).collect(),
                Spec::Tcp { .. } => Vec::new(),
            },
        }
    }
}
