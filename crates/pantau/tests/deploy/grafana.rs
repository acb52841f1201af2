//! grafana/: provisioning files and dashboards parse; panel ids are unique;
//! every panel queries the provisioned datasource.

use std::collections::BTreeSet;

use crate::support::{dashboard_files, panel_exprs, yaml};

#[test]
fn dashboards_parse_with_unique_ids_and_the_provisioned_datasource() {
    let ds = yaml("grafana/provisioning/datasources/prometheus.yml");
    let uid = ds["datasources"][0]["uid"].as_str().unwrap().to_owned();
    assert_eq!(ds["datasources"][0]["url"], "http://prometheus:9090");
    let files = dashboard_files();
    assert_eq!(files.len(), 7, "{files:?}");
    let mut uids = BTreeSet::new();
    for f in files {
        let name = f.display().to_string();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap())
            .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        assert!(
            uids.insert(v["uid"].as_str().unwrap().to_owned()),
            "{name}: duplicate dashboard uid"
        );
        assert!(
            v["title"].as_str().is_some_and(|t| t.starts_with("Pantau / ")),
            "{name}: title"
        );
        let mut ids = BTreeSet::new();
        let panels = v["panels"].as_array().unwrap();
        assert!(!panels.is_empty(), "{name}: no panels");
        for p in panels {
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: a panel without an id"));
            assert!(ids.insert(id), "{name}: panel id {id} used twice");
            assert_eq!(p["datasource"]["uid"], uid.as_str(), "{name} panel {id}: datasource");
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name} panel {id}: no query");
            for t in targets {
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                    "{name} panel {id}: empty query"
                );
                assert_eq!(
                    t["datasource"]["uid"],
                    uid.as_str(),
                    "{name} panel {id}: target datasource"
                );
            }
            let g = &p["gridPos"];
            assert!(
                g["w"].as_u64().unwrap() + g["x"].as_u64().unwrap() <= 24,
                "{name} panel {id}: wider than the grid"
            );
        }
    }
}

#[test]
fn the_dashboard_provider_points_where_compose_mounts_the_dashboards() {
    let prov = yaml("grafana/provisioning/dashboards/pantau.yml");
    let path = prov["providers"][0]["options"]["path"].as_str().unwrap().to_owned();
    let compose = crate::support::read("docker-compose.yml");
    assert!(
        compose.contains(&format!("./grafana/dashboards:{path}")),
        "docker-compose.yml does not mount grafana/dashboards at {path}"
    );
}

#[test]
fn the_dashboards_cover_the_runtime_metrics_the_issue_names() {
    let all: String = panel_exprs().into_iter().map(|e| e.expr).collect::<Vec<_>>().join("\n");
    for m in [
        "pantau_bus_decode_errors",
        "pantau_gateway_ws_connections",
        "pantau_collector_queue_depth",
        "pantau_collector_workers_busy",
        "pantau_collector_cert_expiry_seconds",
        "pantau_collector_check_duration_seconds",
        "pantau_notifier_deliveries_success",
        "pantau_notifier_delivery_duration_seconds",
        "ALERTS",
        "pantau_collector_interface_in_bits_per_second",
        "pantau_collector_router_up",
        "grpc_server_handled_total",
        "grpc_server_handling_seconds",
        "pantau_db_pool_in_use_connections",
        "pantau_db_query_duration_seconds",
        "pantau_db_slow_queries_total",
    ] {
        assert!(all.contains(m), "no panel reads {m}");
    }
}
