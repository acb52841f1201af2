//! The notifier's HTTP face, built before the notifier starts: the caller
//! merges [`Webhooks::router`] into its admin router (port 9104 for
//! `pantau notifier`, 9100 for `pantau all`) and hands the same handle to
//! [`crate::run`], which attaches the running notifier. Until then the
//! route answers 503.

use std::sync::{Arc, OnceLock};

use crate::Notifier;

/// A late-bound handle on the running notifier; cheap to clone.
#[derive(Clone, Default)]
pub struct Webhooks(Arc<OnceLock<Arc<Notifier>>>);

impl Webhooks {
    /// `POST /webhooks/alertmanager`.
    pub fn router(&self) -> axum::Router {
        crate::alertmanager::router(self.clone())
    }

    pub(crate) fn attach(&self, n: Arc<Notifier>) {
        let _ = self.0.set(n);
    }

    pub(crate) fn get(&self) -> Option<Arc<Notifier>> {
        self.0.get().cloned()
    }
}
