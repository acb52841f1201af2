//! The live feed of new results. The latest result of each target is kept
//! on its schedule entry (encoded: about a quarter of the memory of the
//! decoded message, and the same bytes the bus hands its subscribers).

use pantau_proto::v1::CheckResult;
use tokio::sync::broadcast;

/// Results a slow feed subscriber may lag behind before it loses the oldest.
const FEED: usize = 1024;

/// The feed.
pub struct Results {
    feed: broadcast::Sender<CheckResult>,
}

impl Default for Results {
    fn default() -> Self {
        Self {
            feed: broadcast::channel(FEED).0,
        }
    }
}

impl Results {
    /// Sends `r` to feed subscribers.
    pub fn record(&self, r: &CheckResult) {
        if self.feed.receiver_count() > 0 {
            let _ = self.feed.send(r.clone());
        }
    }

    /// New results from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CheckResult> {
        self.feed.subscribe()
    }
}
