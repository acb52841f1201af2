//! The latest result of every target and a live feed of new results. The
//! latest results are kept encoded (about a quarter of the memory of the
//! decoded message), as they are read far less often than written.

use std::collections::HashMap;
use std::sync::RwLock;

use bytes::Bytes;

use pantau_proto::prost::Message;
use pantau_proto::v1::CheckResult;
use tokio::sync::broadcast;

/// Results a slow feed subscriber may lag behind before it loses the oldest.
const FEED: usize = 1024;

/// Latest results and the feed.
pub struct Results {
    latest: RwLock<HashMap<String, Bytes>>,
    feed: broadcast::Sender<CheckResult>,
}

impl Default for Results {
    fn default() -> Self {
        Self {
            latest: RwLock::default(),
            feed: broadcast::channel(FEED).0,
        }
    }
}

impl Results {
    /// Keeps `r`, whose encoding is `encoded`, as its target's latest and
    /// sends it to feed subscribers.
    pub fn record(&self, r: &CheckResult, encoded: Bytes) {
        debug_assert_eq!(encoded.len(), r.encoded_len());
        self.latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(r.target_id.clone(), encoded);
        let _ = self.feed.send(r.clone());
    }

    /// The latest results of `ids` (every target when empty), by target id.
    pub fn latest(&self, ids: &[String]) -> Vec<CheckResult> {
        let map = self.latest.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        // What was encoded here decodes; a failure would only drop that entry.
        let decode = |b: &[u8]| CheckResult::decode(b).ok();
        let mut out: Vec<CheckResult> = if ids.is_empty() {
            map.values().filter_map(|b| decode(b)).collect()
        } else {
            ids.iter()
                .filter_map(|id| map.get(id).and_then(|b| decode(b)))
                .collect()
        };
        out.sort_by(|a, b| a.target_id.cmp(&b.target_id));
        out
    }

    /// Drops the latest result of a removed target.
    pub fn forget(&self, id: &str) {
        self.latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }

    /// New results from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CheckResult> {
        self.feed.subscribe()
    }
}
