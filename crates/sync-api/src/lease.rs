//! The primary lease in a NATS JetStream key-value bucket.
//!
//! One key, `primary`, holds `{holder, endpoint, location, epoch,
//! expires_ms}`. Every write is a compare-and-set on the key's revision
//! (`create` when absent, `update(rev)` otherwise), so two contenders can
//! never both win. The fencing epoch is the revision of the write that
//! acquired the lease: JetStream sequences only grow, so a newer primary
//! always has a higher epoch, even after the bucket's `max_age` (the TTL,
//! three lease lengths) purged a dead holder's key. Renewals keep the epoch.
//!
//! A second bucket, `<bucket>_registry` (no TTL), holds revocations
//! (`revoked.<id>`), shared by every primary, and demotion holds
//! (`hold.<id>`: the instance may not take the lease before then).

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Why a lease operation failed (not a lost race, which is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("NATS key-value {op} failed: {message}")]
    Kv { op: &'static str, message: String },
}

fn kv_err(op: &'static str, e: impl std::fmt::Display) -> LeaseError {
    LeaseError::Kv {
        op,
        message: e.to_string(),
    }
}

const KEY: &str = "primary";

/// Who holds the lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub holder: String,
    pub endpoint: String,
    pub location: String,
    /// 0 in the acquiring write (its revision is the epoch), then the epoch.
    pub epoch: u64,
    pub expires_ms: i64,
}

/// The lease as read: its holder (none when vacant), the key's revision (0
/// when the key never existed or was purged) and the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub holder: Option<Holder>,
    pub revision: u64,
    pub epoch: u64,
}

impl Observed {
    /// The holder while the lease is unexpired at `now_ms`.
    pub fn live(&self, now_ms: i64) -> Option<&Holder> {
        self.holder.as_ref().filter(|h| h.expires_ms > now_ms)
    }
}

/// An instance's acknowledged sequence as shared by the primaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Acked {
    pub seq: u64,
    pub epoch: u64,
    pub revision: u64,
}

/// Handle on the lease and registry buckets.
#[derive(Clone)]
pub struct Lease {
    kv: kv::Store,
    registry: kv::Store,
    ttl: Duration,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

async fn bucket(
    js: &async_nats::jetstream::Context,
    name: &str,
    max_age: Duration,
    replicas: usize,
) -> Result<kv::Store, LeaseError> {
    use async_nats::jetstream::stream;
    if let Ok(kv) = js.get_key_value(name).await {
        return Ok(kv);
    }
    // The bucket's stream, as `create_key_value` would make it; created
    // directly because that call's account query does not parse the
    // answers of older servers (nats-server 2.9).
    let config = stream::Config {
        name: format!("KV_{name}"),
        description: Some("pantau sync: primary lease and registry".to_owned()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: replicas,
        ..Default::default()
    };
    // Another instance may create it at the same moment: then it exists.
    if let Err(e) = js.get_or_create_stream(config).await {
        tracing::debug!(bucket = name, error = %e, "creating the bucket's stream failed; reading it");
    }
    js.get_key_value(name).await.map_err(|e| kv_err("open bucket", e))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Lease {
    /// Opens (creating when missing) `<bucket>_lease` and `<bucket>_registry`;
    /// a lease lasts `ttl`.
    pub async fn open(client: async_nats::Client, bucket_name: &str, ttl: Duration) -> Result<Self, LeaseError> {
        Self::open_replicated(client, bucket_name, ttl, 1).await
    }

    /// [`Lease::open`] with new buckets kept on `replicas` servers of a
    /// JetStream cluster (`nats.replicas`), so the lease outlives a server.
    pub async fn open_replicated(
        client: async_nats::Client,
        bucket_name: &str,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Self, LeaseError> {
        let js = async_nats::jetstream::new(client);
        let kv = bucket(&js, &format!("{bucket_name}_lease"), ttl * 3, replicas).await?;
        let registry = bucket(&js, &format!("{bucket_name}_registry"), Duration::ZERO, replicas).await?;
        Ok(Self { kv, registry, ttl })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Reads the lease.
    pub async fn read(&self) -> Result<Observed, LeaseError> {
        let entry = self.kv.entry(KEY).await.map_err(|e| kv_err("read", e))?;
        Ok(match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let holder: Option<Holder> = serde_json::from_slice(&e.value).ok();
                let epoch = holder
                    .as_ref()
                    .map_or(e.revision, |h| if h.epoch == 0 { e.revision } else { h.epoch });
                Observed {
                    holder,
                    revision: e.revision,
                    epoch,
                }
            }
            Some(e) => Observed {
                holder: None,
                revision: e.revision,
                epoch: 0,
            },
            None => Observed {
                holder: None,
                revision: 0,
                epoch: 0,
            },
        })
    }

    fn value(&self, me: &Holder, epoch: u64) -> Bytes {
        let h = Holder {
            epoch,
            expires_ms: now_ms() + self.ttl.as_millis() as i64,
            ..me.clone()
        };
        Bytes::from(serde_json::to_vec(&h).unwrap_or_default())
    }

    /// Takes the lease if it is still as `seen` (vacant or expired, or any
    /// state when `force`): returns `(epoch, revision)`, or `None` when
    /// someone else wrote first.
    pub async fn acquire(&self, me: &Holder, seen: &Observed, force: bool) -> Result<Option<(u64, u64)>, LeaseError> {
        if !force && seen.live(now_ms()).is_some() {
            return Ok(None);
        }
        let value = self.value(me, 0);
        let written = if seen.revision == 0 {
            self.kv.create(KEY, value).await.map(Some).or_else(|e| match e.kind() {
                kv::CreateErrorKind::AlreadyExists => Ok(None),
                _ => Err(kv_err("create", e)),
            })?
        } else {
            self.kv
                .update(KEY, value, seen.revision)
                .await
                .map(Some)
                .or_else(|e| match e.kind() {
                    kv::UpdateErrorKind::WrongLastRevision => Ok(None),
                    _ => Err(kv_err("update", e)),
                })?
        };
        Ok(written.map(|rev| (rev, rev)))
    }

    /// Extends a held lease: the new revision, or `None` when it was lost
    /// (someone wrote after `revision`).
    pub async fn renew(&self, me: &Holder, epoch: u64, revision: u64) -> Result<Option<u64>, LeaseError> {
        match self.kv.update(KEY, self.value(me, epoch), revision).await {
            Ok(rev) => Ok(Some(rev)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(kv_err("renew", e)),
        }
    }

    /// Gives the lease up if still at `revision` (a demotion).
    pub async fn release(&self, revision: u64) -> Result<bool, LeaseError> {
        match self.kv.delete_expect_revision(KEY, Some(revision)).await {
            Ok(()) => Ok(true),
            // A compare-and-set miss: someone wrote after `revision`.
            Err(_) if self.read().await?.revision != revision => Ok(false),
            Err(e) => Err(kv_err("release", e)),
        }
    }

    /// Keeps `id` from taking the lease until `until_ms`.
    pub async fn hold(&self, id: &str, until_ms: i64) -> Result<(), LeaseError> {
        self.registry
            .put(format!("hold.{id}"), Bytes::from(until_ms.to_string()))
            .await
            .map(|_| ())
            .map_err(|e| kv_err("hold", e))
    }

    /// Whether `id` is held off the lease now.
    pub async fn held(&self, id: &str) -> Result<bool, LeaseError> {
        let v = self
            .registry
            .get(format!("hold.{id}"))
            .await
            .map_err(|e| kv_err("read hold", e))?;
        Ok(v.and_then(|b| std::str::from_utf8(&b).ok()?.parse::<i64>().ok())
            .is_some_and(|until| until > now_ms()))
    }

    /// The sequence of `id`'s results acknowledged by any primary, the epoch
    /// of the primary that wrote it, and the key's revision (0: none yet).
    pub async fn acked(&self, id: &str) -> Result<Acked, LeaseError> {
        let e = self
            .registry
            .entry(format!("acked.{id}"))
            .await
            .map_err(|e| kv_err("read acknowledged sequence", e))?;
        Ok(match e {
            Some(e) if e.operation == kv::Operation::Put => {
                let (seq, epoch) = std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(|s| s.split_once(':'))
                    .and_then(|(s, ep)| Some((s.parse().ok()?, ep.parse().ok()?)))
                    .unwrap_or((0, 0));
                Acked {
                    seq,
                    epoch,
                    revision: e.revision,
                }
            }
            Some(e) => Acked {
                seq: 0,
                epoch: 0,
                revision: e.revision,
            },
            None => Acked::default(),
        })
    }

    /// Raises `id`'s acknowledged sequence to `seq` under `epoch`, if the key
    /// is still at `revision`; `false` when someone wrote meanwhile.
    pub async fn advance(&self, id: &str, seq: u64, epoch: u64, revision: u64) -> Result<bool, LeaseError> {
        let key = format!("acked.{id}");
        let value = Bytes::from(format!("{seq}:{epoch}"));
        let written = if revision == 0 {
            self.registry
                .create(&key, value)
                .await
                .map(|_| ())
                .map_err(|e| e.kind() == kv::CreateErrorKind::AlreadyExists)
        } else {
            self.registry
                .update(&key, value, revision)
                .await
                .map(|_| ())
                .map_err(|e| e.kind() == kv::UpdateErrorKind::WrongLastRevision)
        };
        match written {
            Ok(()) => Ok(true),
            Err(true) => Ok(false),
            Err(false) => Err(kv_err("advance acknowledged sequence", "publish failed")),
        }
    }

    /// Records that `id` is revoked, for every primary to come.
    pub async fn revoke(&self, id: &str) -> Result<(), LeaseError> {
        self.registry
            .put(format!("revoked.{id}"), Bytes::from_static(b"1"))
            .await
            .map(|_| ())
            .map_err(|e| kv_err("revoke", e))
    }

    pub async fn revoked(&self, id: &str) -> Result<bool, LeaseError> {
        Ok(self
            .registry
            .get(format!("revoked.{id}"))
            .await
            .map_err(|e| kv_err("read revocation", e))?
            .is_some())
    }
}
