//! prometheus/: promtool check config, check rules, test rules.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::{RULE_FILES, recorded_names, repo, rules, run_fails, run_ok, tool, yaml};

fn promtool() -> Command {
    let mut c = Command::new(tool("promtool", "prometheus"));
    c.current_dir(repo().join("prometheus"));
    c
}

#[test]
fn promtool_checks_the_compose_and_kubernetes_configs() {
    for file in ["prometheus.yml", "prometheus-k8s.yml"] {
        let out = run_ok(promtool().args(["check", "config", file]));
        assert!(out.contains("SUCCESS: 2 rule files found"), "{file}: {out}");
    }
}

#[test]
fn promtool_checks_the_rules() {
    let out = run_ok(promtool().current_dir(repo()).args(["check", "rules"]).args(RULE_FILES));
    assert!(!out.contains("FAILED"), "{out}");
}

#[test]
fn promtool_unit_tests_of_the_alert_rules_pass() {
    let out = run_ok(promtool().args(["test", "rules", "rules/alerts_test.yml"]));
    assert!(out.contains("SUCCESS"), "{out}");
}

/// The checks above can fail: promtool rejects a rule file with a broken expression.
#[test]
fn promtool_rejects_a_broken_rule() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yml");
    std::fs::write(
        &f,
        "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(pantau_collector_checks_total[5m])\n",
    )
    .unwrap();
    let out = run_fails(promtool().arg("check").arg("rules").arg(&f));
    assert!(out.contains("parse error") || out.contains("unclosed"), "{out}");
}

/// A recording-rule name read by a rule or a panel is defined in recording.yml.
#[test]
fn every_recorded_series_read_is_defined() {
    let defined: BTreeSet<String> = rules().into_iter().filter(|r| r.3).map(|r| r.1).collect();
    for e in crate::support::all_exprs() {
        for name in recorded_names(&e.expr) {
            assert!(
                defined.contains(&name),
                "{}: reads {name}, which recording.yml does not define",
                e.origin
            );
        }
    }
}

/// Every alert has a severity Alertmanager routes on and a summary.
#[test]
fn every_alert_has_severity_and_summary() {
    let v = yaml("prometheus/rules/alerts.yml");
    for g in v["groups"].as_sequence().unwrap() {
        for r in g["rules"].as_sequence().unwrap() {
            let name = r["alert"].as_str().unwrap();
            let sev = r["labels"]["severity"].as_str().unwrap_or_default();
            assert!(
                ["warning", "critical", "info"].contains(&sev),
                "{name}: severity {sev:?}"
            );
            assert!(r["annotations"]["summary"].as_str().is_some(), "{name}: no summary");
        }
    }
}

/// Every alert name the unit tests expect exists, and every alert is tested.
#[test]
fn every_alert_rule_is_unit_tested() {
    let alerts: BTreeSet<String> = rules().into_iter().filter(|r| !r.3).map(|r| r.1).collect();
    let tests = yaml("prometheus/rules/alerts_test.yml");
    let mut tested = BTreeSet::new();
    for t in tests["tests"].as_sequence().unwrap() {
        for a in t["alert_rule_test"].as_sequence().unwrap() {
            tested.insert(a["alertname"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(alerts, tested, "alerts.yml and alerts_test.yml disagree");
}
