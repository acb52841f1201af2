//! Configuration that flows from the primary to its dependents.
//!
//! The primary reads its collector's targets over gRPC (`sync.collector_url`;
//! config-file and API targets alike, push targets excepted: they are bound
//! to the instance that receives the push), adds the notification channels
//! (each whole, secrets included, as its `notifier.channels[]` entry in
//! JSON: a dependent that becomes primary delivers with them; only an
//! authenticated instance gets them, and their Debug hides them) and the
//! global settings, and
//! hashes the encoded result (SHA-256); the version goes up when the hash
//! changes. A dependent sends the hash it holds and gets the configuration
//! only when it changed, then applies the targets to its own collector with
//! `UpsertTarget` and deletes those the primary no longer has.

use std::collections::BTreeSet;

use pantau_config::Config;
use pantau_core::grpc::Channel;
use pantau_core::store::Store;
use pantau_core::time::to_duration;
use pantau_proto::v1 as pb;
use pantau_proto::v1::collector_service_client::CollectorServiceClient;
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::store;

/// The current configuration, its version and hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub version: u64,
    pub hash: String,
    pub config: pb::SyncedConfig,
}

/// The primary's source of configuration.
#[derive(Debug)]
pub struct ConfigSource {
    collector: CollectorServiceClient<Channel>,
    current: Mutex<Option<Versioned>>,
}

/// A target as it travels: output-only fields cleared.
fn portable(mut t: pb::Target) -> pb::Target {
    t.address.clear();
    t.source = 0;
    t.breaker = 0;
    t
}

/// The configuration's hash: SHA-256 of its encoding, hex.
pub fn hash(c: &pb::SyncedConfig) -> String {
    hex::encode(Sha256::digest(c.encode_to_vec()))
}

/// Builds the synced configuration from targets and the static config.
pub fn build(config: &Config, mut targets: Vec<pb::Target>) -> pb::SyncedConfig {
    targets.retain(|t| t.kind != pb::CheckKind::Push as i32);
    targets.sort_by(|a, b| a.id.cmp(&b.id));
    let channels = config
        .notifier
        .channels
        .iter()
        .map(|c| pb::NotificationChannelRef {
            id: c.name.clone(),
            kind: c.kind.as_str().to_owned(),
            // A validated channel always encodes; the entry is then empty
            // and the gateway answers 502 naming the channel.
            entry_json: serde_json::to_string(c).unwrap_or_default(),
        })
        .collect();
    pb::SyncedConfig {
        targets: targets.into_iter().map(portable).collect(),
        channels,
        settings: Some(pb::GlobalSettings {
            check_interval: Some(to_duration(config.collector.interval)),
            check_timeout: Some(to_duration(config.collector.timeout)),
            heartbeat_interval: Some(to_duration(config.sync.heartbeat_interval)),
            sync_interval: Some(to_duration(config.sync.sync_interval)),
        }),
    }
}

impl ConfigSource {
    /// Reads the local collector (`sync.collector_url`) with this process's service token.
    pub fn new(ctx: &pantau_core::service::Context) -> Self {
        Self {
            collector: CollectorServiceClient::new(ctx.channel(&ctx.config.sync.collector_url)),
            current: Mutex::new(None),
        }
    }

    /// Reads the collector's targets and bumps the version if they changed;
    /// when the collector cannot answer, the last configuration stands.
    pub async fn refresh(&self, config: &Config, db: &Store) -> Result<Versioned, tonic::Status> {
        let listed = self
            .collector
            .clone()
            .list_targets(pb::ListTargetsRequest {})
            .await
            .map(|r| r.into_inner().targets);
        let mut current = self.current.lock().await;
        let targets = match listed {
            Ok(t) => t,
            Err(e) => {
                return current.clone().ok_or_else(|| {
                    tonic::Status::unavailable(format!("the local collector cannot list targets: {}", e.message()))
                });
            }
        };
        let built = build(config, targets);
        let h = hash(&built);
        if let Some(c) = current.as_ref()
            && c.hash == h
        {
            return Ok(c.clone());
        }
        let stored_hash = store::fact(db, "config_hash_served").await.ok().flatten();
        let stored_version: u64 = store::fact(db, "config_version")
            .await
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let version = if stored_hash.as_deref() == Some(h.as_str()) {
            stored_version.max(1)
        } else {
            stored_version + 1
        };
        let _ = store::set_fact(db, "config_version", &version.to_string()).await;
        let _ = store::set_fact(db, "config_hash_served", &h).await;
        let v = Versioned {
            version,
            hash: h,
            config: built,
        };
        *current = Some(v.clone());
        Ok(v)
    }

    /// The last configuration built, if any.
    pub async fn cached(&self) -> Option<Versioned> {
        self.current.lock().await.clone()
    }
}

/// Applies `config` to the local collector: upserts every target, deletes
/// the targets an earlier sync added that are gone now. Returns the number
/// of targets applied; a target the collector refuses is logged and skipped.
pub async fn apply(
    collector: &mut CollectorServiceClient<Channel>,
    db: &Store,
    config: &pb::SyncedConfig,
) -> Result<usize, tonic::Status> {
    let before: BTreeSet<String> = store::fact(db, "synced_targets")
        .await
        .ok()
        .flatten()
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default();
    let mut now = BTreeSet::new();
    for t in &config.targets {
        match collector
            .upsert_target(pb::UpsertTargetRequest {
                target: Some(t.clone()),
            })
            .await
        {
            Ok(_) => {
                now.insert(t.id.clone());
            }
            Err(e) if matches!(e.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => return Err(e),
            Err(e) => {
                tracing::warn!(target = %t.id, error = %e.message(), "the local collector refused a synced target");
            }
        }
    }
    for gone in before.difference(&now) {
        match collector
            .delete_target(pb::DeleteTargetRequest { id: gone.clone() })
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == tonic::Code::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let json = serde_json::to_string(&now).unwrap_or_default();
    store::set_fact(db, "synced_targets", &json)
        .await
        .map_err(|e| pantau_core::error::store_unavailable("sync store", &e))?;
    Ok(now.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_travels_whole_and_its_secret_is_in_the_hash() {
        let mut config = Config::default();
        let channel: pantau_config::ChannelConfig = serde_json::from_value(serde_json::json!({
            "name": "ops", "type": "pagerduty", "routing_key": "R0UTING-KEY-1", "rate_limit": 3
        }))
        .unwrap();
        config.notifier.channels.push(channel.clone());
        let built = build(&config, vec![]);
        let c = &built.channels[0];
        assert_eq!((c.id.as_str(), c.kind.as_str()), ("ops", "pagerduty"));
        let back: pantau_config::ChannelConfig = serde_json::from_str(&c.entry_json).unwrap();
        assert_eq!(back, channel, "the entry decodes to the same channel");
        config.notifier.channels[0].routing_key = Some("R0UTING-KEY-2".into());
        assert_ne!(
            hash(&built),
            hash(&build(&config, vec![])),
            "a new key is a new configuration"
        );
    }

    #[test]
    fn hash_changes_with_targets_and_ignores_push_and_output_fields() {
        let config = Config::default();
        let target = |id: &str, kind: pb::CheckKind| pb::Target {
            id: id.into(),
            kind: kind as i32,
            address: "shown".into(),
            source: 1,
            ..Default::default()
        };
        let first = build(
            &config,
            vec![target("web", pb::CheckKind::Http), target("b", pb::CheckKind::Tcp)],
        );
        let reordered = build(
            &config,
            vec![target("b", pb::CheckKind::Tcp), target("web", pb::CheckKind::Http)],
        );
        assert_eq!(hash(&first), hash(&reordered), "order does not matter");
        assert_eq!(first.targets[0].address, "");
        let with_push = build(
            &config,
            vec![
                target("web", pb::CheckKind::Http),
                target("b", pb::CheckKind::Tcp),
                target("p", pb::CheckKind::Push),
            ],
        );
        assert_eq!(hash(&first), hash(&with_push), "push targets stay local");
        let fewer = build(&config, vec![target("web", pb::CheckKind::Http)]);
        assert_ne!(hash(&first), hash(&fewer));
        assert_eq!(hash(&first).len(), 64);
    }
}
