//! k8s/: `kubectl kustomize` renders the base (with k8s/monitoring) and the
//! production overlay, `kubernetes-validate --strict` accepts every object,
//! and the objects carry what operators rely on (probes, resources, PDBs,
//! scrape annotations, NATS credentials, NetworkPolicies); `nats-server -t`
//! accepts the NATS configurations; k8s/monitoring/files are the
//! repository's own Prometheus, Alertmanager and Grafana files.

use std::collections::BTreeSet;
use std::process::Command;

use serde_yaml::Value;

use crate::support::{kubernetes_validate, read, repo, run_fails, run_ok, tool};

/// Pantau's service workloads (the collector is a StatefulSet).
const SERVICES: &[&str] = &[
    "collector",
    "alert-engine",
    "wan-detector",
    "notifier",
    "sync-api",
    "gateway",
];

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
    for s in ["nats", "postgres", "prometheus", "alertmanager", "grafana"] {
        assert!(
            named("StatefulSet", s)["spec"]["volumeClaimTemplates"].is_sequence(),
            "{s}"
        );
    }
    // Monitoring: the images compose runs, each behind a Service.
    let compose = crate::support::yaml("docker-compose.yml");
    for s in ["prometheus", "alertmanager", "grafana"] {
        assert_eq!(
            named("StatefulSet", s)["spec"]["template"]["spec"]["containers"][0]["image"],
            compose["services"][s]["image"],
            "{s}: another image than docker-compose.yml's"
        );
        named("Service", s);
    }
    // NATS wants the token of Secret pantau-secrets, and every service presents it.
    let nats = &named("StatefulSet", "nats")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(secret_env(nats, "NATS_TOKEN"), Some(("pantau-secrets", "NATS_TOKEN")));
    assert!(
        config_map_data(&objs, "nats-config")["nats.conf"]
            .as_str()
            .unwrap()
            .contains("token: $NATS_TOKEN"),
        "nats.conf does not require the token"
    );
    for svc in SERVICES {
        let c = &workload(&objs, svc)["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            secret_env(c, "PANTAU_NATS__TOKEN"),
            Some(("pantau-secrets", "NATS_TOKEN")),
            "{svc}"
        );
        // One signing secret for every service: their gRPC tokens check.
        assert_eq!(
            secret_env(c, "PANTAU_GATEWAY__AUTH__JWT_SECRET"),
            Some(("pantau-secrets", "JWT_SECRET")),
            "{svc}"
        );
        assert_eq!(env_of(&objs, c)["PANTAU_NATS__URL"], "nats://nats:4222", "{svc}");
    }
    // Only Pantau's service pods reach NATS and PostgreSQL.
    for (target, port) in [("nats", 4222), ("postgres", 5432)] {
        let admitted = admitted_to(&objs, target, port);
        let expected: BTreeSet<String> = SERVICES
            .iter()
            .map(|s| (*s).to_owned())
            .chain((target == "nats").then(|| "nats".to_owned()))
            .collect();
        assert_eq!(admitted, expected, "who may reach {target}:{port}");
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
    for svc in SERVICES {
        let image = workload(&objs, svc)["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap();
        assert!(image.ends_with(":0.1.0") && !image.contains("latest"), "{image}");
    }
}

/// Losing a node: NATS is a 3-node JetStream cluster (one pod per node, two
/// kept through disruptions), the stream is kept on all three, clients use
/// TLS and the token, and Prometheus, Alertmanager and Grafana come along.
#[test]
fn production_runs_nats_as_a_three_node_cluster_with_stream_replicas_3() {
    let objs = objects(&kustomize("k8s/overlays/production"));
    let find = |kind: &str, name: &str| {
        objs.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let nats = find("StatefulSet", "nats");
    assert_eq!(nats["spec"]["replicas"], 3);
    assert_eq!(nats["spec"]["podManagementPolicy"], "Parallel");
    let anti = &nats["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        [0];
    assert_eq!(anti["topologyKey"], "kubernetes.io/hostname", "one NATS pod per node");
    let pdb = find("PodDisruptionBudget", "nats");
    assert_eq!(pdb["spec"]["minAvailable"], 2);
    assert!(pdb["spec"].get("maxUnavailable").is_none());
    assert_eq!(
        find("Service", "nats-headless")["spec"]["publishNotReadyAddresses"],
        true
    );
    for svc in SERVICES {
        find("PodDisruptionBudget", svc);
    }
    for s in ["prometheus", "alertmanager", "grafana"] {
        find("StatefulSet", s);
    }

    // The servers route to each of the StatefulSet's pods, over mutual TLS.
    let conf = config_map_data(&objs, "nats-config")["nats.conf"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..3 {
        assert!(
            conf.contains(&format!(
                "nats-route://nats-{i}.nats-headless.pantau.svc.cluster.local:6222"
            )),
            "no route to nats-{i}"
        );
    }
    assert!(!conf.contains("nats-3."), "more routes than replicas");
    assert!(conf.contains("verify: true") && conf.contains("token: $NATS_TOKEN"));

    // Every Pantau workload: the stream on 3 replicas, the three servers as
    // TLS seeds, the CA of Secret nats-tls, the token.
    for svc in SERVICES {
        let w = workload(&objs, svc);
        let c = &w["spec"]["template"]["spec"]["containers"][0];
        let env = env_of(&objs, c);
        assert_eq!(env["PANTAU_NATS__REPLICAS"], "3", "{svc}");
        let seeds: Vec<&str> = env["PANTAU_NATS__URL"].split(',').collect();
        assert_eq!(seeds.len(), 3, "{svc}: {seeds:?}");
        assert!(seeds.iter().all(|u| u.starts_with("tls://")), "{svc}: {seeds:?}");
        let ca = &env["PANTAU_NATS__CA_FILE"];
        let mount = c["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| ca.starts_with(m["mountPath"].as_str().unwrap()) && m["name"] == "nats-tls")
            .unwrap_or_else(|| panic!("{svc}: {ca} is not mounted"));
        let vol = w["spec"]["template"]["spec"]["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        assert_eq!(vol["secret"]["secretName"], "nats-tls", "{svc}");
        assert_eq!(
            secret_env(c, "PANTAU_NATS__TOKEN"),
            Some(("pantau-secrets", "NATS_TOKEN")),
            "{svc}"
        );
    }
    let nats_c = &nats["spec"]["template"]["spec"]["containers"][0];
    assert!(
        nats_c["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == "/etc/nats/tls"),
        "NATS without its certificate"
    );
}

/// `nats-server -t` accepts the rendered nats.conf of the base and of the
/// production overlay (with a throwaway CA and certificate for the latter),
/// and rejects a misspelt key.
#[test]
fn nats_server_accepts_the_rendered_nats_configurations() {
    let nats = tool("nats-server", "nats-server");
    let openssl = tool("openssl", "openssl");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ossl = |args: &[&str]| {
        run_ok(Command::new(&openssl).args(args).current_dir(d));
    };
    ossl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    ossl(&[
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=nats", "-keyout", "tls.key", "-out", "tls.csr",
    ]);
    std::fs::write(
        d.join("ext"),
        "subjectAltName=DNS:nats,DNS:*.nats-headless.pantau.svc.cluster.local\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    ossl(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-extfile",
        "ext",
        "-out",
        "tls.crt",
    ]);
    let check = |conf: &str| {
        let f = d.join("nats.conf");
        std::fs::write(&f, conf.replace("/etc/nats/tls", &d.to_string_lossy())).unwrap();
        let mut cmd = Command::new(&nats);
        cmd.arg("-c")
            .arg(&f)
            .arg("-t")
            .env("POD_NAME", "nats-0")
            .env("NATS_TOKEN", "t");
        cmd
    };
    for dir in ["k8s/", "k8s/overlays/production"] {
        let objs = objects(&kustomize(dir));
        let conf = config_map_data(&objs, "nats-config")["nats.conf"]
            .as_str()
            .unwrap()
            .to_owned();
        run_ok(&mut check(&conf));
        if dir.ends_with("production") {
            run_fails(&mut check(&conf.replace("verify: true", "verfy: true")));
        }
    }
}

/// k8s/monitoring/files are copies (kustomize loads nothing from outside its
/// directory) of the files compose mounts: byte for byte the same.
#[test]
fn monitoring_files_are_the_ones_compose_mounts() {
    let mut pairs: Vec<(String, String)> = vec![
        (
            "prometheus/prometheus-k8s.yml".into(),
            "prometheus/prometheus.yml".into(),
        ),
        (
            "prometheus/rules/recording.yml".into(),
            "prometheus/rules/recording.yml".into(),
        ),
        (
            "prometheus/rules/alerts.yml".into(),
            "prometheus/rules/alerts.yml".into(),
        ),
        (
            "alertmanager/alertmanager.yml".into(),
            "alertmanager/alertmanager.yml".into(),
        ),
        (
            "grafana/provisioning/datasources/prometheus.yml".into(),
            "grafana/provisioning/datasources/prometheus.yml".into(),
        ),
        (
            "grafana/provisioning/dashboards/pantau.yml".into(),
            "grafana/provisioning/dashboards/pantau.yml".into(),
        ),
    ];
    for f in crate::support::dashboard_files() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        pairs.push((
            format!("grafana/dashboards/{name}"),
            format!("grafana/dashboards/{name}"),
        ));
    }
    let kustomization = read("k8s/monitoring/kustomization.yaml");
    for (source, copy) in &pairs {
        assert_eq!(
            read(source),
            read(&format!("k8s/monitoring/files/{copy}")),
            "k8s/monitoring/files/{copy} differs from {source}: run `make k8s-monitoring-files`"
        );
        assert!(
            kustomization.contains(&format!("files/{copy}")),
            "k8s/monitoring/kustomization.yaml does not load files/{copy}"
        );
    }
    // No stale copy of a file that is gone.
    let copies = walk(&repo().join("k8s/monitoring/files"));
    assert_eq!(copies.len(), pairs.len(), "{copies:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The Deployment, or the collector's StatefulSet, of a Pantau service.
fn workload<'a>(objs: &'a [Value], svc: &str) -> &'a Value {
    let kind = if svc == "collector" {
        "StatefulSet"
    } else {
        "Deployment"
    };
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == svc)
        .unwrap_or_else(|| panic!("no {kind} {svc}"))
}

/// The data of the ConfigMap generated as `name` (its rendered name has a hash suffix).
fn config_map_data<'a>(objs: &'a [Value], name: &str) -> &'a Value {
    let prefix = format!("{name}-");
    &objs
        .iter()
        .find(|o| {
            o["kind"] == "ConfigMap"
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n == name || n.strip_prefix(&prefix).is_some_and(|h| !h.contains('-')))
        })
        .unwrap_or_else(|| panic!("no ConfigMap {name}"))["data"]
}

/// (Secret, key) of the container's variable `var` when it comes from a Secret.
fn secret_env<'a>(c: &'a Value, var: &str) -> Option<(&'a str, &'a str)> {
    let e = c["env"].as_sequence()?.iter().find(|e| e["name"] == var)?;
    let r = &e["valueFrom"]["secretKeyRef"];
    Some((r["name"].as_str()?, r["key"].as_str()?))
}

/// The container's variables from its ConfigMaps (`envFrom`) and plain `env` values.
fn env_of(objs: &[Value], c: &Value) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for from in c["envFrom"].as_sequence().into_iter().flatten() {
        let name = from["configMapRef"]["name"].as_str().expect("envFrom a ConfigMap");
        let cm = objs
            .iter()
            .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("envFrom names ConfigMap {name}, which is not rendered"));
        for (k, v) in cm["data"].as_mapping().unwrap() {
            out.insert(k.as_str().unwrap().to_owned(), v.as_str().unwrap().to_owned());
        }
    }
    for e in c["env"].as_sequence().into_iter().flatten() {
        if let Some(v) = e["value"].as_str() {
            out.insert(e["name"].as_str().unwrap().to_owned(), v.to_owned());
        }
    }
    out
}

/// The app names whose pods a NetworkPolicy lets reach `target`'s pods on `port`.
fn admitted_to(objs: &[Value], target: &str, port: u64) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for np in objs.iter().filter(|o| o["kind"] == "NetworkPolicy") {
        let sel = &np["spec"]["podSelector"];
        if !selects(sel, target) {
            continue;
        }
        for rule in np["spec"]["ingress"].as_sequence().into_iter().flatten() {
            let ports = rule["ports"].as_sequence();
            if ports.is_some_and(|ps| !ps.iter().any(|p| p["port"] == port)) {
                continue;
            }
            let from = rule["from"].as_sequence();
            let Some(from) = from else {
                out.insert("*anyone*".to_owned());
                continue;
            };
            for peer in from {
                assert!(
                    peer.get("namespaceSelector").is_none() && peer.get("ipBlock").is_none(),
                    "{}: {target}:{port} open beyond the namespace's pods",
                    np["metadata"]["name"].as_str().unwrap()
                );
                let p = &peer["podSelector"];
                // Pods are admitted by name only; any other selector (all
                // pods, part-of=pantau, ..) shows up as itself and fails.
                let by_name = p["matchLabels"]["app.kubernetes.io/name"].as_str();
                let exprs = p["matchExpressions"].as_sequence();
                if let Some(name) = by_name {
                    out.insert(name.to_owned());
                } else if exprs.is_none() {
                    out.insert(format!("*{}*", serde_yaml::to_string(p).unwrap().trim()));
                }
                for e in exprs.into_iter().flatten() {
                    assert_eq!(e["key"], "app.kubernetes.io/name");
                    assert_eq!(e["operator"], "In");
                    out.extend(
                        e["values"]
                            .as_sequence()
                            .unwrap()
                            .iter()
                            .map(|v| v.as_str().unwrap().to_owned()),
                    );
                }
            }
        }
    }
    out
}

/// Whether a NetworkPolicy's podSelector selects the pods of app `name`
/// (the label selectors used in k8s/: matchLabels on app.kubernetes.io/name
/// or part-of, matchExpressions In/NotIn on the name, or all pods).
fn selects(sel: &Value, name: &str) -> bool {
    let labels = [
        ("app.kubernetes.io/name", name),
        ("app.kubernetes.io/part-of", "pantau"),
    ];
    let ok_labels = sel["matchLabels"].as_mapping().is_none_or(|m| {
        m.iter()
            .all(|(k, v)| labels.iter().any(|(lk, lv)| k == *lk && v == *lv))
    });
    let ok_exprs = sel["matchExpressions"].as_sequence().into_iter().flatten().all(|e| {
        let values: Vec<&str> = e["values"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let value = labels.iter().find(|(k, _)| e["key"] == *k).map(|(_, v)| *v);
        match e["operator"].as_str().unwrap() {
            "In" => value.is_some_and(|v| values.contains(&v)),
            "NotIn" => value.is_none_or(|v| !values.contains(&v)),
            op => panic!("selector operator {op} not understood by this test"),
        }
    });
    ok_labels && ok_exprs
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
    for dir in ["k8s/", "k8s/overlays/production"] {
        config_check_each_workload(dir);
    }
}

fn config_check_each_workload(dir: &str) {
    let objs = objects(&kustomize(dir));
    // The pantau.yaml of the rendered ConfigMap, as the pods mount it.
    let config = tempfile::tempdir().unwrap();
    let config_file = config.path().join("pantau.yaml");
    std::fs::write(
        &config_file,
        config_map_data(&objs, "pantau-config")["pantau.yaml"].as_str().unwrap(),
    )
    .unwrap();
    let deployments: Vec<&Value> = SERVICES.iter().map(|s| workload(&objs, s)).collect();
    for d in deployments {
        let name = d["metadata"]["name"].as_str().unwrap();
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        let mut env: Vec<(String, String)> = env_of(&objs, c)
            .into_iter()
            .filter(|(k, _)| c["env"].as_sequence().unwrap().iter().all(|e| e["name"] != k.as_str()))
            .collect();
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
                // A Secret's key: the rendered template's value (the JWT
                // secret has a length rule), else a stand-in.
                None => objs
                    .iter()
                    .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == e["valueFrom"]["secretKeyRef"]["name"])
                    .and_then(|o| {
                        o["stringData"][e["valueFrom"]["secretKeyRef"]["key"].as_str().unwrap_or("")].as_str()
                    })
                    .unwrap_or("secret")
                    .to_owned(),
            };
            for (k, v) in &env {
                val = val.replace(&format!("$({k})"), v);
            }
            env.push((key, val));
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pantau"));
        cmd.args(["config", "check"])
            .arg(&config_file)
            .env_clear()
            .envs(env.iter().filter(|(k, _)| k != "PANTAU_CONFIG").map(|(k, v)| (k, v)));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{dir} {name}: pantau config check with the pod's environment failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
