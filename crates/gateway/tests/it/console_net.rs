//! The console's network pages against the gateway alone (no collector,
//! WAN detector or sync API behind it): what they say when their backends
//! are missing, bad input, and a standalone instance. With the real
//! services behind them: crates/pantau/tests/it/console_net.rs.

use reqwest::StatusCode;

use super::start;

async fn page(url: &str) -> (StatusCode, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_standalone_instance_says_so_and_the_matrix_names_a_missing_collector() {
    let g = start(|c| {
        c.instance.name = "solo".into();
        c.instance.location = "jkt".into();
    })
    .await;
    let (code, html) = page(&format!("{}/console/locations", g.base)).await;
    assert_eq!(code, StatusCode::OK, "{html}");
    assert!(html.contains(r#"data-role="standalone""#), "{html}");
    assert!(html.contains("id=\"standalone\""), "{html}");
    assert!(html.contains("<b>solo</b>") && html.contains("<b>jkt</b>"), "{html}");
    // No instance controls on a standalone instance, even for an admin.
    for control in ["/sync/api/promote", "/sync/api/demote", "id=\"register\""] {
        assert!(!html.contains(control), "{control}: {html}");
    }
    // No collector behind this gateway: the matrix says why instead of a blank table.
    assert!(html.contains("collector"), "{html}");
    assert!(
        html.contains("Locations</a>") && html.contains("Routers</a>"),
        "the nav links the pages"
    );
}

#[tokio::test]
async fn location_filters_are_refused_by_name() {
    let g = start(|_| {}).await;
    let (code, html) = page(&format!("{}/console/locations?bogus=1", g.base)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(html.contains("bogus"), "{html}");
    let long = "x".repeat(10_000);
    let (code, html) = page(&format!("{}/console/locations?q={long}", g.base)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("q `") && html.len() < 5_000,
        "quotes at most a little: {}",
        html.len()
    );
    let (code, html) = page(&format!("{}/console/locations?state=sideways", g.base)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(html.contains("sideways"), "{html}");
}

#[tokio::test]
async fn router_pages_without_a_wan_detector_say_so() {
    let g = start(|c| {
        c.gateway.wan_detector_url = format!("http://127.0.0.1:{}", pantau_testkit::free_port());
    })
    .await;
    for path in ["/console/routers", "/console/routers/edge"] {
        let (code, html) = page(&format!("{}{path}", g.base)).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{path}: {html}");
        assert!(html.contains("wan detector"), "{path}: {html}");
    }
    for bad in ["a.b", "%3Cscript%3E", &"r".repeat(200)] {
        let (code, html) = page(&format!("{}/console/routers/{bad}", g.base)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {html}");
        assert!(html.contains("router id") && !html.contains("<script>"), "{html}");
    }
}

/// A reboot of `router` as the collector publishes it.
fn reboot(router: &str, n: usize) -> pantau_proto::v1::RouterEvent {
    pantau_proto::v1::RouterEvent {
        id: format!("{router}-reboot-{n}"),
        kind: pantau_proto::v1::EventKind::Reboot.into(),
        source: router.into(),
        severity: pantau_proto::v1::Severity::Warning.into(),
        message: format!("reboot {n}"),
        attributes: [("router".to_owned(), router.to_owned())].into(),
        ..Default::default()
    }
}

/// The timeline kept in `db`: what a restarted gateway shows is what it had,
/// the newest [`PER_ROUTER`] per router.
async fn the_timeline_survives_a_restart(db: pantau_config::DatabaseConfig) {
    use pantau_core::store::Store;
    use pantau_gateway::timeline::{PER_ROUTER, Timeline};
    use pantau_gateway::view::RouterEventView;

    let dir = tempfile::tempdir().unwrap();
    let ctx = pantau_core::service::Context::new(
        std::sync::Arc::new(pantau_config::Config::default()),
        std::sync::Arc::new(pantau_core::bus::memory::MemoryBus::new()),
    );
    let store = Store::connect(&db, dir.path(), "gateway", pantau_gateway::auth::store::MIGRATIONS)
        .await
        .unwrap();
    let before = Timeline::default();
    before.persist(&store, &ctx).await.unwrap();
    let total = PER_ROUTER + 5;
    for n in 0..total {
        let e = reboot("r1", n);
        before.keep(&e, &RouterEventView::from(&e));
    }
    let e = reboot("r2", 0);
    before.keep(&e, &RouterEventView::from(&e));
    // The writer is asynchronous: wait until the last event is stored.
    let stored = |router: &'static str| {
        let store = store.clone();
        async move {
            pantau_core::with_pool!(&store, pool => {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM router_events WHERE router = $1")
                    .bind(router)
                    .fetch_one(pool)
                    .await
                    .unwrap()
            })
        }
    };
    super::eventually(|| async { stored("r2").await == 1 }).await;
    assert_eq!(stored("r1").await, PER_ROUTER as i64, "only the newest are kept");
    ctx.shutdown.cancel();

    let after = Timeline::default();
    let ctx = pantau_core::service::Context::new(
        std::sync::Arc::new(pantau_config::Config::default()),
        std::sync::Arc::new(pantau_core::bus::memory::MemoryBus::new()),
    );
    after.persist(&store, &ctx).await.unwrap();
    assert_eq!(after.of("r1"), before.of("r1"));
    assert_eq!(after.of("r1").len(), PER_ROUTER);
    assert_eq!(after.of("r1")[0].message, format!("reboot {}", total - 1));
    assert_eq!(after.of("r2").len(), 1);
    ctx.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_survives_a_restart_in_sqlite() {
    the_timeline_survives_a_restart(pantau_config::DatabaseConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_survives_a_restart_in_postgres() {
    let pg = pantau_testkit::Postgres::start()
        .await
        .expect("PostgreSQL (Debian: postgresql)");
    the_timeline_survives_a_restart(pantau_config::DatabaseConfig {
        url: Some(pg.url()),
        schema_prefix: "gateway_timeline_test".into(),
        ..pantau_config::DatabaseConfig::default()
    })
    .await;
}
