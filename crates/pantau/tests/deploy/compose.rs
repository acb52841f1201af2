//! docker-compose.yml and deploy/: no Docker engine runs here, so the
//! structure is checked: the compose specification's JSON schema (vendored
//! by check-jsonschema), every service built or pulled, ports unique,
//! depends_on targets existing, mounted files present, health checks, and
//! the Pantau services configured from PANTAU_* variables.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_yaml::Value;

use crate::support::{repo, run_fails, run_ok, yaml};

fn check_jsonschema() -> std::path::PathBuf {
    let p = repo().join(".venv-deploy/bin/check-jsonschema");
    assert!(
        p.is_file(),
        "{} not found: install the PyPI package check-jsonschema with `make deps` \
         (.venv-deploy/bin/pip install check-jsonschema)",
        p.display()
    );
    p
}

#[test]
fn compose_file_matches_the_compose_specification_schema() {
    run_ok(
        Command::new(check_jsonschema())
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(repo().join("docker-compose.yml")),
    );
    // The schema check can fail: an unknown service key is rejected.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("compose.yml");
    std::fs::write(&bad, "services:\n  a:\n    image: x\n    restart_policy: always\n").unwrap();
    run_fails(
        Command::new(check_jsonschema())
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(&bad),
    );
}

fn services(v: &Value) -> BTreeMap<String, Value> {
    v["services"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, s)| (k.as_str().unwrap().to_owned(), s.clone()))
        .collect()
}

/// serde_yaml keeps `<<` merge keys as they are: apply them (one level, as used here).
fn merged(s: &Value) -> Value {
    let mut out = serde_yaml::Mapping::new();
    if let Some(base) = s.get("<<").and_then(Value::as_mapping) {
        out.extend(base.clone());
    }
    for (k, v) in s.as_mapping().unwrap() {
        if k != "<<" {
            let v = if v.get("<<").is_some() { merged(v) } else { v.clone() };
            out.insert(k.clone(), v);
        }
    }
    Value::Mapping(out)
}

#[test]
fn compose_services_are_complete_and_consistent() {
    let mut v = yaml("docker-compose.yml");
    v.apply_merge().unwrap();
    let services: BTreeMap<String, Value> = services(&v).into_iter().map(|(k, s)| (k, merged(&s))).collect();
    let expected = [
        "alert-engine",
        "alertmanager",
        "collector",
        "gateway",
        "grafana",
        "nats",
        "notifier",
        "postgres",
        "prometheus",
        "sync-api",
        "wan-detector",
    ];
    assert_eq!(services.keys().map(String::as_str).collect::<Vec<_>>(), expected);
    let volumes: BTreeSet<String> = v["volumes"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let mut host_ports = BTreeSet::new();
    for (name, s) in &services {
        assert!(
            s.get("image").is_some() || s.get("build").is_some(),
            "{name}: no image nor build"
        );
        assert!(s.get("healthcheck").is_some(), "{name}: no healthcheck");
        if let Some(build) = s.get("build") {
            let df = build["dockerfile"].as_str().unwrap();
            assert!(
                repo().join(build["context"].as_str().unwrap()).join(df).is_file(),
                "{name}: {df}"
            );
        }
        for p in s.get("ports").and_then(Value::as_sequence).into_iter().flatten() {
            let host = p.as_str().unwrap().split(':').next().unwrap().to_owned();
            assert!(
                host_ports.insert(host.clone()),
                "{name}: host port {host} published twice"
            );
        }
        let deps: Vec<String> = match s.get("depends_on") {
            Some(Value::Sequence(d)) => d.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
            Some(Value::Mapping(d)) => d.keys().map(|x| x.as_str().unwrap().to_owned()).collect(),
            _ => Vec::new(),
        };
        for d in deps {
            assert!(
                services.contains_key(&d),
                "{name} depends on {d}, which is not a service"
            );
        }
        for m in s.get("volumes").and_then(Value::as_sequence).into_iter().flatten() {
            let src = m.as_str().unwrap().split(':').next().unwrap();
            if src.starts_with('.') {
                assert!(repo().join(src).exists(), "{name} mounts {src}, which does not exist");
            } else {
                assert!(volumes.contains(src), "{name} uses volume {src}, not declared");
            }
        }
    }
    // The Pantau services: one image, each its own command and health port, configured by PANTAU_*.
    let admin = BTreeMap::from([
        ("collector", "9101"),
        ("alert-engine", "9103"),
        ("wan-detector", "9102"),
        ("notifier", "9104"),
        ("gateway", "8080"),
        ("sync-api", "9105"),
    ]);
    for (svc, port) in admin {
        let s = &services[svc];
        assert_eq!(s["image"], "pantau:latest", "{svc}");
        assert_eq!(s["command"][0], svc, "{svc}: command");
        let env = &s["environment"];
        assert_eq!(env["PANTAU_NATS__URL"], "nats://nats:4222", "{svc}");
        assert!(
            env["PANTAU_DATABASE__URL"]
                .as_str()
                .unwrap()
                .contains("@postgres:5432/"),
            "{svc}"
        );
        let hc = serde_yaml::to_string(&s["healthcheck"]["test"]).unwrap();
        assert!(
            hc.contains(&format!("127.0.0.1:{port}/healthz")),
            "{svc}: healthcheck {hc}"
        );
    }
    // The sync-api runs as the primary, and the gateway calls it.
    assert_eq!(services["sync-api"]["environment"]["ENABLE_SYNC_API"], "true");
    assert_eq!(
        services["gateway"]["environment"]["PANTAU_GATEWAY__SYNC_URL"],
        "http://sync-api:50055"
    );
    // Prometheus scrapes exactly these services on those ports.
    let prom = crate::support::read("prometheus/prometheus.yml");
    for t in [
        "collector:9101",
        "alert-engine:9103",
        "wan-detector:9102",
        "notifier:9104",
        "gateway:8080",
        "sync-api:9105",
    ] {
        assert!(prom.contains(t), "prometheus.yml does not scrape {t}");
    }
    let nats_args: Vec<&str> = services["nats"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(nats_args.contains(&"-js"), "NATS without JetStream");
    // NATS wants a token, and every Pantau service presents the same one.
    let token = nats_args
        .iter()
        .position(|a| *a == "--auth")
        .map(|i| nats_args[i + 1])
        .expect("NATS without --auth: any container could use the bus");
    for svc in [
        "collector",
        "alert-engine",
        "wan-detector",
        "notifier",
        "gateway",
        "sync-api",
    ] {
        assert_eq!(services[svc]["environment"]["PANTAU_NATS__TOKEN"], token, "{svc}");
        // One signing secret for every service: their gRPC tokens check.
        assert_eq!(
            services[svc]["environment"]["PANTAU_GATEWAY__AUTH__JWT_SECRET"],
            services["gateway"]["environment"]["PANTAU_GATEWAY__AUTH__JWT_SECRET"],
            "{svc}"
        );
        assert!(
            services[svc]["environment"]["PANTAU_GATEWAY__AUTH__JWT_SECRET"]
                .as_str()
                .is_some_and(|s| s.contains("JWT_SECRET")),
            "{svc}"
        );
    }
    // Internal ports stay on the compose network: the services' gRPC, NATS
    // and PostgreSQL are not published on the host.
    for (name, s) in &services {
        for p in s.get("ports").and_then(Value::as_sequence).into_iter().flatten() {
            let p = p.as_str().unwrap();
            let container = p.rsplit(':').next().unwrap();
            assert!(
                !["4222", "5432", "50051", "50052", "50053", "50054", "50055"].contains(&container),
                "{name} publishes the internal port {p}"
            );
        }
    }
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_with_a_healthcheck() {
    let df = crate::support::read("deploy/Dockerfile");
    assert!(df.contains("FROM rust:1-bookworm AS build"), "builder stage");
    assert!(df.contains("FROM debian:bookworm-slim"), "runtime stage");
    assert!(df.contains("USER 10001"), "non-root user");
    assert!(df.contains("HEALTHCHECK"), "healthcheck");
    assert!(df.contains("ENTRYPOINT [\"/usr/local/bin/pantau\"]"), "entrypoint");
    for port in [
        "8080", "9101", "9102", "9103", "9104", "9105", "50051", "50052", "50053", "50054", "50055",
    ] {
        assert!(
            df.lines().any(|l| l.starts_with("EXPOSE") && l.contains(port)),
            "EXPOSE {port}"
        );
    }
    for line in df.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        let src = line.split_whitespace().nth(1).unwrap();
        assert!(
            repo().join(src).exists(),
            "Dockerfile copies {src}, which does not exist"
        );
    }
}

/// The `ENV` variables of deploy/Dockerfile's runtime stage.
fn dockerfile_env() -> Vec<(String, String)> {
    let df = crate::support::read("deploy/Dockerfile").replace("\\\n", " ");
    df.lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `${VAR:-default}` (compose interpolation) replaced by its default.
fn interpolate(v: &str) -> String {
    let re = regex::Regex::new(r"\$\{[A-Z_]+:-([^}]*)\}").unwrap();
    re.replace_all(v, "$1").into_owned()
}

/// Each Pantau container's configuration is valid: `pantau config check`
/// on the image's pantau.yaml with the image's ENV and the service's
/// environment (so every PANTAU_* variable names a real key).
#[test]
fn each_pantau_container_configuration_passes_config_check() {
    let mut v = yaml("docker-compose.yml");
    v.apply_merge().unwrap();
    let services: BTreeMap<String, Value> = services(&v).into_iter().map(|(k, s)| (k, merged(&s))).collect();
    let image_env = dockerfile_env();
    assert!(image_env.iter().any(|(k, _)| k == "PANTAU_CONFIG"), "{image_env:?}");
    for svc in [
        "collector",
        "alert-engine",
        "wan-detector",
        "notifier",
        "gateway",
        "sync-api",
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pantau"));
        cmd.args(["config", "check"])
            .arg(repo().join("deploy/pantau.yaml"))
            .env_clear()
            .envs(
                image_env
                    .iter()
                    .filter(|(k, _)| k != "PANTAU_CONFIG")
                    .map(|(k, v)| (k, v)),
            );
        for (k, val) in services[svc]["environment"].as_mapping().unwrap() {
            cmd.env(k.as_str().unwrap(), interpolate(val.as_str().unwrap()));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{svc}: pantau config check with the container's environment failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The check above can fail: an unknown PANTAU_ variable is an error.
#[test]
fn config_check_rejects_an_unknown_pantau_variable() {
    let out = run_fails(
        Command::new(env!("CARGO_BIN_EXE_pantau"))
            .args(["config", "check"])
            .arg(repo().join("deploy/pantau.yaml"))
            .env_clear()
            .env("PANTAU_HEALTH_URL", "http://127.0.0.1:9100/healthz"),
    );
    assert!(out.contains("PANTAU_HEALTH_URL"), "{out}");
}

/// `systemd-analyze verify` on deploy/pantau.service (with this build's
/// binary as ExecStart, which must exist): no complaint at all, since
/// systemd only warns about unknown keys.
fn verify_unit(unit: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pantau.service");
    std::fs::write(&f, unit.replace("/usr/local/bin/pantau", env!("CARGO_BIN_EXE_pantau"))).unwrap();
    let out = Command::new(crate::support::tool("systemd-analyze", "systemd"))
        .arg("verify")
        .arg(&f)
        .output()
        .unwrap();
    format!(
        "{}{}{}",
        if out.status.success() { "" } else { "failed: " },
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_systemd_unit_verifies_cleanly() {
    let unit = crate::support::read("deploy/pantau.service");
    assert!(unit.contains("--config /etc/pantau/pantau.yaml all"), "runs pantau all");
    let out = verify_unit(&unit);
    assert!(out.is_empty(), "systemd-analyze verify deploy/pantau.service:\n{out}");
    // And it can fail: an unknown key is reported.
    let bad = verify_unit(&unit.replace("Restart=on-failure", "Restart=on-failure\nRestartt=always"));
    assert!(bad.contains("Restartt"), "{bad}");
}
