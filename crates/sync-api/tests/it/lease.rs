use std::time::Duration;

use pantau_sync_api::lease::{Holder, Lease, now_ms};
use pantau_testkit::Nats;

use crate::client;

fn me(id: &str) -> Holder {
    Holder {
        holder: id.into(),
        endpoint: format!("http://127.0.0.1:1/{id}"),
        location: "loc".into(),
        epoch: 0,
        expires_ms: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_contender_wins_and_the_epoch_only_grows() {
    let nats = Nats::start().await.unwrap();
    let ttl = Duration::from_millis(800);
    let a = Lease::open(client(&nats).await, "t1", ttl).await.unwrap();
    let b = Lease::open(client(&nats).await, "t1", ttl).await.unwrap();

    // Both saw it vacant; the compare-and-set lets exactly one in.
    let seen_a = a.read().await.unwrap();
    let seen_b = b.read().await.unwrap();
    assert!(seen_a.holder.is_none());
    let (me_a, me_b) = (me("a"), me("b"));
    let (won_a, won_b) = tokio::join!(a.acquire(&me_a, &seen_a, false), b.acquire(&me_b, &seen_b, false));
    let (won_a, won_b) = (won_a.unwrap(), won_b.unwrap());
    assert!(won_a.is_some() ^ won_b.is_some(), "{won_a:?} {won_b:?}");
    let (winner, loser, lease_w, lease_l) = if won_a.is_some() {
        ("a", "b", &a, &b)
    } else {
        ("b", "a", &b, &a)
    };
    let (epoch1, mut rev) = won_a.or(won_b).unwrap();
    let seen = lease_l.read().await.unwrap();
    assert_eq!(seen.live(now_ms()).unwrap().holder, winner);
    assert_eq!(seen.epoch, epoch1);

    // Renewals keep the epoch; a live lease cannot be taken.
    for _ in 0..3 {
        rev = lease_w
            .renew(&me(winner), epoch1, rev)
            .await
            .unwrap()
            .expect("still ours");
        let seen = lease_l.read().await.unwrap();
        assert_eq!(seen.epoch, epoch1);
        assert_eq!(lease_l.acquire(&me(loser), &seen, false).await.unwrap(), None);
    }

    // The winner stops renewing: once it expired the other takes over with a
    // higher epoch, and the old holder's renewal is refused.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let seen = lease_l.read().await.unwrap();
    assert!(seen.live(now_ms()).is_none());
    let (epoch2, _) = lease_l
        .acquire(&me(loser), &seen, false)
        .await
        .unwrap()
        .expect("expired lease is free");
    assert!(epoch2 > epoch1);
    assert_eq!(lease_w.renew(&me(winner), epoch1, rev).await.unwrap(), None);
    let seen = lease_w.read().await.unwrap();
    assert_eq!(seen.live(now_ms()).unwrap().holder, loser);
    assert_eq!(seen.epoch, epoch2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_takeover_release_hold_and_revocation() {
    let nats = Nats::start().await.unwrap();
    let ttl = Duration::from_secs(5);
    let a = Lease::open(client(&nats).await, "t2", ttl).await.unwrap();
    let b = Lease::open(client(&nats).await, "t2", ttl).await.unwrap();
    let seen = a.read().await.unwrap();
    let (e1, rev_a) = a.acquire(&me("a"), &seen, false).await.unwrap().unwrap();

    // A manual promotion takes a live lease, with a newer epoch.
    let seen = b.read().await.unwrap();
    let (e2, rev_b) = b.acquire(&me("b"), &seen, true).await.unwrap().unwrap();
    assert!(e2 > e1);
    assert_eq!(
        a.renew(&me("a"), e1, rev_a).await.unwrap(),
        None,
        "the old holder is fenced off"
    );

    // Releasing with a stale revision does nothing; with the right one it frees the lease.
    assert!(!b.release(rev_a).await.unwrap());
    assert!(b.release(rev_b).await.unwrap());
    let seen = a.read().await.unwrap();
    assert!(seen.holder.is_none());
    let (e3, _) = a.acquire(&me("a"), &seen, false).await.unwrap().unwrap();
    assert!(e3 > e2, "epochs grow across a release: {e3} > {e2}");

    // Holds and revocations are shared through the registry bucket.
    assert!(!b.held("b").await.unwrap());
    a.hold("b", now_ms() + 10_000).await.unwrap();
    assert!(b.held("b").await.unwrap());
    a.hold("b", 0).await.unwrap();
    assert!(!b.held("b").await.unwrap());
    assert!(!b.revoked("c").await.unwrap());
    a.revoke("c").await.unwrap();
    assert!(b.revoked("c").await.unwrap());

    // The acknowledged sequence every primary shares: compare-and-set, with
    // the writer's epoch.
    let none = b.acked("d").await.unwrap();
    assert_eq!((none.seq, none.epoch, none.revision), (0, 0, 0));
    assert!(a.advance("d", 10, e3, 0).await.unwrap());
    assert!(
        !b.advance("d", 5, e2, 0).await.unwrap(),
        "a stale revision does not overwrite"
    );
    let seen = b.acked("d").await.unwrap();
    assert_eq!((seen.seq, seen.epoch), (10, e3));
    assert!(b.advance("d", 12, e3, seen.revision).await.unwrap());
    assert_eq!(a.acked("d").await.unwrap().seq, 12);
}
