//! k8s/: `kubectl kustomize` renders the base and the production overlay,
//! `kubernetes-validate --strict` accepts every object, and the objects
//! carry what operators rely on (probes, resources, PDBs, scrape annotations).

use std::collections::BTreeSet;
use std::process::Command;

use serde_yaml::Value;

use crate::support::{kubernetes_validate, repo, run_fails, run_ok, tool};

fn kustomize(dir: &str) -> String {
    let out = Command::new(tool("kubectl", "kubectl (https://kubernetes.io/docs/tasks/tools/)"))
        .args(["kustomize", dir])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize {dir} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn objects(rendered: &str) -> Vec<Value> {
    rendered
        .split("\n---\n")
        .map(|d| serde_yaml::from_str::<Value>(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn validate(rendered: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rendered.yaml");
    std::fs::write(&f, rendered).unwrap();
    let out = run_ok(Command::new(kubernetes_validate()).arg("--strict").arg(&f));
    assert!(!out.contains("ERROR"), "{out}");
}

#[test]
fn the_base_renders_and_every_object_validates_strictly() {
    let rendered = kustomize("k8s/");
    validate(&rendered);
    let objs = objects(&rendered);
    let kinds: BTreeSet<String> = objs.iter().map(|o| o["kind"].as_str().unwrap().to_owned()).collect();
    for k in [
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ] {
        assert!(kinds.contains(k), "no {k} rendered");
    }
    let prom = crate::support::read("prometheus/prometheus-k8s.yml");
    let named = |kind: &str, name: &str| {
        objs.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .clone()
    };
    for (svc, admin, grpc) in [
        ("collector", 9101, Some(50051)),
        ("alert-engine", 9103, Some(50053)),
        ("wan-detector", 9102, Some(50052)),
        ("notifier", 9104, Some(50054)),
        ("gateway", 8080, None),
        ("sync-api", 9105, Some(50055)),
    ] {
        // The collector is a StatefulSet: its pod index is its shard.
        let d = named(
            if svc == "collector" {
                "StatefulSet"
            } else {
                "Deployment"
            },
            svc,
        );
        assert_eq!(d["metadata"]["namespace"], "pantau", "{svc}");
        let pod = &d["spec"]["template"];
        let ann = &pod["metadata"]["annotations"];
        assert_eq!(ann["prometheus.io/scrape"], "true", "{svc}");
        assert_eq!(ann["prometheus.io/port"], admin.to_string().as_str(), "{svc}");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["args"][0], svc, "{svc}: runs its own subcommand");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{svc}");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{svc}");
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], admin, "{svc}");
        if let Some(g) = grpc {
            assert_eq!(c["startupProbe"]["grpc"]["port"], g, "{svc}: gRPC probe");
        }
        assert!(c["resources"]["requests"]["memory"].is_string(), "{svc}: requests");
        assert!(c["resources"]["limits"]["memory"].is_string(), "{svc}: limits");
        assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true, "{svc}");
        named("Service", svc);
        named("PodDisruptionBudget", svc);
        let metrics = format!("pantau-{svc}-metrics");
        assert_eq!(named("Service", &metrics)["spec"]["clusterIP"], "None", "{metrics}");
        assert!(
            prom.contains(&format!("{metrics}.pantau.svc.cluster.local")),
            "prometheus-k8s.yml does not discover {metrics}"
        );
    }
    for s in ["nats", "postgres"] {
        assert!(
            named("StatefulSet", s)["spec"]["volumeClaimTemplates"].is_sequence(),
            "{s}"
        );
    }
    // NetworkPolicy pantau-internal admits pods labelled part-of=pantau: every
    // workload's pods carry it, or default-deny would cut them off.
    for o in objs
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
    {
        assert_eq!(
            o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"],
            "pantau",
            "{}: pods without app.kubernetes.io/part-of",
            o["metadata"]["name"].as_str().unwrap()
        );
    }
}

#[test]
fn the_production_overlay_renders_and_validates() {
    let rendered = kustomize("k8s/overlays/production");
    validate(&rendered);
    let objs = objects(&rendered);
    let gw = objs
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "gateway")
        .unwrap();
    assert_eq!(gw["spec"]["replicas"], 3);
    for d in objs.iter().filter(|o| o["kind"] == "Deployment") {
        let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap();
        assert!(image.ends_with(":0.1.0") && !image.contains("latest"), "{image}");
    }
}

/// The validation above can fail: an unknown field is rejected with --strict.
#[test]
fn kubernetes_validate_rejects_an_unknown_field() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(
        &f,
        "apiVersion: v1\nkind: Service\nmetadata: { name: x }\nspec:\n  ports: [{ port: 80 }]\n  bogus: 1\n",
    )
    .unwrap();
    run_fails(Command::new(kubernetes_validate()).arg("--strict").arg(&f));
}

/// Each Deployment's configuration is valid: `pantau config check` on the
/// ConfigMap's pantau.yaml with the container's environment (values from
/// the pod or a Secret stand in as `pod-0` and `secret`; `$(VAR)` expanded).
#[test]
fn each_deployment_configuration_passes_config_check() {
    let objs = objects(&kustomize("k8s/"));
    let deployments: Vec<&Value> = objs
        .iter()
        .filter(|o| o["kind"] == "Deployment" || (o["kind"] == "StatefulSet" && o["metadata"]["name"] == "collector"))
        .collect();
    assert_eq!(deployments.len(), 6);
    for d in deployments {
        let name = d["metadata"]["name"].as_str().unwrap();
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        let mut env: Vec<(String, String)> = Vec::new();
        for e in c["env"].as_sequence().unwrap() {
            let key = e["name"].as_str().unwrap().to_owned();
            let mut val = match e["value"].as_str() {
                Some(v) => v.to_owned(),
                None if e["valueFrom"]["fieldRef"]["fieldPath"]
                    .as_str()
                    .is_some_and(|p| p.contains("pod-index")) =>
                {
                    "0".to_owned()
                }
                None if e["valueFrom"]["fieldRef"].is_mapping() => "pod-0".to_owned(),
                None => "secret".to_owned(),
            };
            for (k, v) in &env {
                val = val.replace(&format!("$({k})"), v);
            }
            env.push((key, val));
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pantau"));
        cmd.args(["config", "check"])
            .arg(repo().join("k8s/base/pantau.yaml"))
            .env_clear()
            .envs(env.iter().filter(|(k, _)| k != "PANTAU_CONFIG").map(|(k, v)| (k, v)));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{name}: pantau config check with the pod's environment failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
