//! The sync-api against a real nats-server: the lease (compare-and-set,
//! expiry, fencing epoch, forced takeover, release) and the election of
//! [`Node`](pantau_sync_api::node::Node)s sharing one bucket.

mod lease;
mod node;
mod store;

/// A client of `nats`.
pub async fn client(nats: &pantau_testkit::Nats) -> async_nats::Client {
    async_nats::connect(nats.url()).await.expect("nats reachable")
}
