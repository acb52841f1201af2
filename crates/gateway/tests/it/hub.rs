//! The WebSocket hub under pressure: a silent client is closed after the
//! idle timeout; a client that stops reading loses its oldest events and,
//! once its socket takes nothing for the idle timeout, is closed (what it
//! missed counted), while a client that reads gets every one.

use std::time::Duration;

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::{publish, result, start};

async fn dropped_total(base: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("pantau_gateway_ws_messages_dropped_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_answers_pings_is_closed() {
    let g = start(|c| {
        c.gateway.dashboard.ping_interval = Duration::from_millis(100);
        c.gateway.dashboard.idle_timeout = Duration::from_millis(400);
    })
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&g.ws).await.unwrap();
    // Not reading means not answering pings: the server hears nothing.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| f.reason.to_string()),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the server closes a silent client");
    assert!(
        closed.as_deref().is_none_or(|r| r.contains("idle timeout")),
        "{closed:?}"
    );
    // A client that reads (and so answers pings) stays.
    let (mut live, _) = tokio_tungstenite::connect_async(&g.ws).await.unwrap();
    let alive = tokio::time::timeout(Duration::from_millis(1200), async {
        loop {
            match live.next().await {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return false,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(alive.is_err(), "a reading client was closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_loses_its_oldest_events_and_never_slows_the_others() {
    // 8 KiB events: the stalled client's socket buffers fill after a few
    // megabytes, and then its share of the ring (256) runs over.
    const N: usize = 3000;
    let g = start(|c| {
        c.gateway.dashboard.client_buffer = 256;
        c.gateway.dashboard.ping_interval = Duration::from_millis(300);
        c.gateway.dashboard.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let before = dropped_total(&g.base).await;
    let (stalled, _) = tokio_tungstenite::connect_async(&g.ws).await.unwrap();
    let (mut fast, _) = tokio_tungstenite::connect_async(&g.ws).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut n = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while n < N {
            match tokio::time::timeout_at(deadline, fast.next()).await {
                Ok(Some(Ok(Message::Text(_)))) => n += 1,
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        n
    });
    // Paced so a reading client keeps up: 20 events, then a breath.
    let mut r = result("flood", true);
    r.message = "x".repeat(8192);
    for i in 0..N {
        publish(&g, &r).await;
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let got = reader.await.unwrap();
    assert_eq!(got, N, "the reading client missed events");
    // The stalled client's socket took nothing for the idle timeout: it is
    // closed, and what it missed is counted.
    let mut after = before;
    for _ in 0..50 {
        after = dropped_total(&g.base).await;
        if after > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        after > before,
        "the stalled client dropped nothing: {before} -> {after}"
    );
    drop(stalled);
}

/// The publisher writes to a socket with room itself and queues for one
/// without; a client that reads in bursts (its socket full, then drained,
/// again and again) still gets every event once, in the order published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_keep_their_order_whether_written_at_once_or_queued() {
    const N: usize = 1500;
    let g = start(|c| c.gateway.dashboard.client_buffer = N).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&g.ws).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(N);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while seen.len() < N {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    let msg = v["data"]["message"].as_str().unwrap_or_default().to_owned();
                    seen.push(msg.split(' ').next().unwrap_or_default().parse::<usize>().unwrap());
                    // Bursts: every 100 events the client stops reading for a
                    // while, so its socket fills and the publisher must queue.
                    if seen.len() % 100 == 0 {
                        tokio::time::sleep(Duration::from_millis(150)).await;
                    }
                }
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        seen
    });
    let mut r = result("order", true);
    let pad = "x".repeat(64 * 1024);
    for i in 0..N {
        r.message = format!("{i} {pad}");
        publish(&g, &r).await;
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let seen = reader.await.unwrap();
    assert_eq!(seen.len(), N, "every event arrives");
    let out_of_order = seen.windows(2).filter(|w| w[1] != w[0] + 1).count();
    assert_eq!(
        out_of_order,
        0,
        "events arrive in order: {:?}",
        &seen[..seen.len().min(20)]
    );
}

/// A consensus (`pantau.consensus.<target>`, a ConsensusResult) reaches the
/// clients of its target as `consensus`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_events_reach_the_clients_of_their_target() {
    use pantau_core::bus::publish_proto;
    use pantau_proto::v1;
    let g = start(|_| {}).await;
    let url = format!("{}?types=consensus&target=web", g.ws);
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
    let mut c = v1::ConsensusResult {
        target_id: "web".into(),
        locations_total: 3,
        locations_successful: 1,
        quorum: 2,
        down_locations: vec!["jkt".into(), "sby".into()],
        epoch: 7,
        ..Default::default()
    };
    c.set_status(v1::ConsensusStatus::Down);
    let got = async {
        loop {
            publish_proto(g.bus.as_ref(), &pantau_core::bus::subject::consensus("web"), &c)
                .await
                .unwrap();
            if let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
                return serde_json::from_str::<serde_json::Value>(&t).unwrap();
            }
        }
    };
    let v = tokio::time::timeout(Duration::from_secs(10), got)
        .await
        .expect("a consensus event");
    assert_eq!(v["type"], "consensus", "{v}");
    assert_eq!(v["data"]["status"], "down", "{v}");
    assert_eq!(v["data"]["down_locations"], serde_json::json!(["jkt", "sby"]), "{v}");
    assert_eq!(v["data"]["epoch"], 7, "{v}");
}
