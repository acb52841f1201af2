//! `http_steps` targets through the YAML door: a typo, a wrong type, an
//! unknown extraction kind or a hostile size is refused naming the key;
//! nothing is defaulted in silence.

use pantau_config::{Config, LoadOptions, TargetSpec};

fn load(yaml: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pantau.yaml");
    std::fs::write(&path, yaml).unwrap();
    Config::load(&LoadOptions {
        file: Some(path),
        env: vec![],
    })
    .map_err(|e| e.to_string())
}

const GOOD: &str = r#"
collector:
  targets:
    - id: api-flow
      type: http_steps
      headers: {accept: application/json}
      proxy: http://127.0.0.1:3128
      resolve: {api.internal: 127.0.0.1}
      steps:
        - name: login
          method: POST
          url: http://api.internal:8080/login
          body: '{"user": "monitor"}'
          expected_status: [200]
          conditions:
            - json: {path: $.ok, equals: "true"}
          extract:
            token: {json: $.token}
        - name: me
          url: http://api.internal:8080/me
          headers: {authorization: "Bearer {{token}}"}
          conditions:
            - response_time_below: 2s
"#;

#[test]
fn a_flow_loads() {
    let c = load(GOOD).unwrap();
    let TargetSpec::HttpSteps(s) = &c.collector.targets[0].spec else {
        panic!()
    };
    assert_eq!(s.steps.len(), 2);
    assert_eq!(s.options.resolve["api.internal"].to_string(), "127.0.0.1");
}

#[test]
fn hostile_yaml_is_refused_naming_the_key() {
    let cases = [
        (GOOD.replace("name: me", "name: me\n          colour: red"), "colour"),
        (
            GOOD.replace("token: {json: $.token}", "token: {xpath: //token}"),
            "xpath",
        ),
        (
            GOOD.replace("expected_status: [200]", "expected_status: [twohundred]"),
            "expected_status",
        ),
        (
            GOOD.replace("expected_status: [200]", "expected_status: [99999999]"),
            "expected_status",
        ),
        (
            GOOD.replace("Bearer {{token}}", "Bearer {{tokn}}"),
            "collector.targets[0].steps[1].headers.authorization",
        ),
        (
            GOOD.replace("token: {json: $.token}", "token: {json: '$[?'}"),
            "collector.targets[0].steps[0].extract.token.json",
        ),
        (GOOD.replace("steps:", "steps: 12\n      stepz:"), "steps"),
        (
            GOOD.replace("resolve: {api.internal: 127.0.0.1}", "resolve: {api.internal: [1]}"),
            "resolve",
        ),
        (
            GOOD.replace("http://127.0.0.1:3128", "gopher://127.0.0.1:70"),
            "collector.targets[0].proxy",
        ),
        (
            GOOD.replace("'{\"user\": \"monitor\"}'", &format!("'{}'", "x".repeat(200_000))),
            "collector.targets[0].steps[0].body",
        ),
    ];
    for (i, (yaml, key)) in cases.iter().enumerate() {
        let e = load(yaml).unwrap_err();
        assert!(e.contains(key), "case {i}: `{}` lacks {key}", &e[..e.len().min(600)]);
        assert!(
            e.len() < 5000,
            "case {i}: the message quotes too much ({} bytes)",
            e.len()
        );
    }
    // A thousand steps: refused by count, quickly, naming the key.
    let mut many = String::from("collector:\n  targets:\n    - id: many\n      type: http_steps\n      steps:\n");
    for _ in 0..1000 {
        many.push_str("        - url: http://127.0.0.1/\n");
    }
    let e = load(&many).unwrap_err();
    assert!(
        e.contains("collector.targets[0].steps") && e.contains("at most 20"),
        "{e}"
    );
}

#[test]
fn the_probes_example_has_a_flow_and_a_proxied_target() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/probes.yaml");
    let c = Config::load(&LoadOptions {
        file: Some(file.into()),
        env: vec![],
    })
    .unwrap_or_else(|e| panic!("{file}: {e}"));
    let flows = c
        .collector
        .targets
        .iter()
        .filter(|t| matches!(&t.spec, TargetSpec::HttpSteps(s) if s.steps.len() >= 2))
        .count();
    let proxied = c
        .collector
        .targets
        .iter()
        .filter(
            |t| matches!(&t.spec, TargetSpec::Http(h) if h.options().proxy.is_some() && !h.options().resolve.is_empty()),
        )
        .count();
    assert_eq!((flows, proxied), (1, 1));
}
