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
