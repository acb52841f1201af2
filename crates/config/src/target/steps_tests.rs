use std::collections::BTreeMap;

use super::{MAX_STEPS, RawStep, references, render};
use crate::target::refused;
use crate::{CheckType, RawTarget, TargetSpec};

fn step(url: &str) -> RawStep {
    RawStep {
        url: Some(url.into()),
        ..RawStep::default()
    }
}

fn target(steps: Vec<RawStep>) -> RawTarget {
    let mut r = RawTarget::new("flow", CheckType::HttpSteps);
    r.steps = steps;
    r
}

#[test]
fn variables_are_found_and_rendered() {
    assert_eq!(references("a {{ token }} b {{id}}").unwrap(), ["token", "id"]);
    assert!(references("{{ a b }}").is_err());
    assert!(references("{{unclosed").is_err());
    assert!(references("{{1abc}}").is_err());
    let vars = BTreeMap::from([("token".to_owned(), "T".to_owned())]);
    assert_eq!(render("Bearer {{token}}!", &vars).unwrap(), "Bearer T!");
    assert_eq!(render("{{missing}}", &vars).unwrap_err(), "missing");
    // A value holding `{{` is not expanded again.
    let vars = BTreeMap::from([("a".to_owned(), "{{a}}".to_owned())]);
    assert_eq!(render("{{a}}", &vars).unwrap(), "{{a}}");
}

#[test]
fn a_login_flow_parses_and_travels_back() {
    let mut login = step("http://127.0.0.1:8080/login");
    login.name = Some("login".into());
    login.method = Some("POST".into());
    login.body = Some(r#"{"user":"u"}"#.into());
    login
        .extract
        .insert("token".into(), super::Extract::Json("$.token".into()));
    login
        .extract
        .insert("sid".into(), super::Extract::Header("x-session".into()));
    login
        .extract
        .insert("n".into(), super::Extract::Regex("n=(\\d+)".into()));
    let mut me = step("http://127.0.0.1:8080/users/{{n}}");
    me.headers.insert("authorization".into(), "Bearer {{token}}".into());
    me.body = Some("{{sid}}".into());
    let r = target(vec![login, me]);
    let t = r.clone().parse("t").unwrap();
    let TargetSpec::HttpSteps(s) = &t.spec else { panic!() };
    assert_eq!(s.steps.len(), 2);
    assert_eq!(s.steps[0].label(0), "step 1 (login)");
    assert_eq!(s.steps[1].label(1), "step 2");
    assert_eq!(RawTarget::from(t), r);
}

#[test]
fn hostile_steps_are_refused_naming_the_key() {
    let many = |n: usize| (0..n).map(|_| step("http://x/")).collect::<Vec<_>>();
    let cases: Vec<(RawTarget, &str)> = vec![
        (target(vec![]), "t.steps"),
        (target(many(1000)), "t.steps"),
        (target(many(MAX_STEPS + 1)), "must have at most 20 steps"),
        (
            target(vec![step("http://x/"), step("http://x/{{token}}")]),
            "t.steps[1].url",
        ),
        (target(vec![step("ftp://x/")]), "t.steps[0].url"),
        (target(vec![step("{{base}}/login")]), "t.steps[0].url"),
        (target(vec![RawStep::default()]), "t.steps[0].url"),
        (
            target(vec![RawStep {
                body: Some("x".repeat(10 << 20)),
                ..step("http://x/")
            }]),
            "t.steps[0].body",
        ),
        (
            target(vec![RawStep {
                method: Some("get".into()),
                ..step("http://x/")
            }]),
            "t.steps[0].method",
        ),
        (
            target(vec![RawStep {
                expected_status: vec![700],
                ..step("http://x/")
            }]),
            "t.steps[0].expected_status",
        ),
        (
            target(vec![RawStep {
                extract: BTreeMap::from([("t".into(), super::Extract::Json("not a path".into()))]),
                ..step("http://x/")
            }]),
            "t.steps[0].extract.t.json",
        ),
        (
            target(vec![RawStep {
                extract: BTreeMap::from([("t".into(), super::Extract::Regex("(unclosed".into()))]),
                ..step("http://x/")
            }]),
            "t.steps[0].extract.t.regex",
        ),
        (
            target(vec![RawStep {
                extract: BTreeMap::from([("bad name".into(), super::Extract::Header("x".into()))]),
                ..step("http://x/")
            }]),
            "t.steps[0].extract",
        ),
        (
            target(vec![RawStep {
                headers: BTreeMap::from([("authorization".into(), "Bearer {{nope}}".into())]),
                ..step("http://x/")
            }]),
            "t.steps[0].headers.authorization",
        ),
        (
            target(vec![RawStep {
                body: Some("{{late}}".into()),
                extract: BTreeMap::from([("late".into(), super::Extract::Header("x".into()))]),
                ..step("http://x/")
            }]),
            "uses `late`, which no earlier step extracts",
        ),
        (
            target(vec![RawStep {
                extract: (0..40)
                    .map(|i| (format!("v{i}"), super::Extract::Header("x".into())))
                    .collect(),
                ..step("http://x/")
            }]),
            "t.steps[0].extract",
        ),
        (
            {
                let mut r = target(vec![step("http://x/")]);
                r.url = Some("http://x/".into());
                r
            },
            "t.url",
        ),
    ];
    for (i, (r, key)) in cases.into_iter().enumerate() {
        let e = refused(r);
        assert!(e.contains(key), "case {i}: `{}` lacks {key}", &e[..e.len().min(400)]);
        assert!(
            e.len() < 4000,
            "case {i}: the message quotes too much: {} bytes",
            e.len()
        );
    }
}

#[test]
fn credential_headers_of_steps_are_masked() {
    let mut s = step("http://x/");
    s.headers.insert("authorization".into(), "Bearer hunter2".into());
    let mut c = crate::CollectorConfig {
        targets: vec![std::sync::Arc::new(target(vec![s]).parse("t").unwrap())],
        ..crate::CollectorConfig::default()
    };
    c.mask();
    let TargetSpec::HttpSteps(s) = &c.targets[0].spec else {
        panic!()
    };
    assert_eq!(s.steps[0].headers["authorization"], "***");
}
