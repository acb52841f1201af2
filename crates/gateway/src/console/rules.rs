//! `GET /console/rules[?edit=<id>]`: every alert rule (name, expression,
//! `for`, severity, labels, state, dependencies) and, for editors, a form
//! that creates or replaces one and a delete button for the API's own
//! rules — the REST routes `POST /api/v1/monitoring/alerts/rules` and
//! `DELETE …/rules/{id}`, called by `assets/admin.js`.
//!
//! `GET /console/rules/check?expr=`: the expression checked as it is typed
//! (htmx, debounced), by the alert engine's own parser through the same
//! call as `GET /api/v1/monitoring/alerts/rules/validate`; an HTML fragment
//! with the column and reason of a fault and a caret under it.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use pantau_config::types::quote;
use pantau_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use super::Console;
use super::page::{SignedIn, User, fail, render};
use crate::alerts::{RuleCheckView, RuleView, check_expr, rule_view};

pub fn router() -> Router<Console> {
    Router::new()
        .route("/console/rules", get(list))
        .route("/console/rules/check", get(check))
}

/// The page's query: the rule to edit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesQuery {
    pub edit: Option<String>,
}

/// A rule and what it is doing now.
#[derive(Debug, Serialize)]
pub struct RuleRow {
    pub rule: RuleView,
    /// `disabled`, `firing`, `acknowledged` or `ok`.
    pub state: &'static str,
    /// Its open (firing or acknowledged) alerts.
    pub open: usize,
}

/// The rule's state from its open alerts: firing wins over acknowledged.
fn state_of(rule: &RuleView, open: &[pb::Alert]) -> (&'static str, usize) {
    let mine: Vec<_> = open.iter().filter(|a| a.rule_id == rule.id).collect();
    let state = if !rule.enabled {
        "disabled"
    } else if mine.iter().any(|a| a.state == pb::AlertState::Firing as i32) {
        "firing"
    } else if mine.is_empty() {
        "ok"
    } else {
        "acknowledged"
    };
    (state, mine.len())
}

fn backend_failed(s: &tonic::Status, user: &User) -> Response {
    let e = crate::grpc_error(s, "alert engine");
    fail(e.status, e.message, Some(user))
}

async fn list(
    State(c): State<Console>,
    SignedIn(user): SignedIn,
    q: Result<Query<RulesQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return fail(
            StatusCode::BAD_REQUEST,
            "the query is not valid: only `edit` is known",
            Some(&user),
        );
    };
    let mut client = c.alerts.clone();
    let rules = match client.list_rules(pb::ListRulesRequest {}).await {
        Ok(r) => r.into_inner().rules,
        Err(s) => return backend_failed(&s, &user),
    };
    let open = match client
        .list_alerts(pb::ListAlertsRequest {
            states: vec![pb::AlertState::Firing as i32, pb::AlertState::Acknowledged as i32],
            page_size: 500,
            ..pb::ListAlertsRequest::default()
        })
        .await
    {
        Ok(a) => a.into_inner().alerts,
        Err(s) => return backend_failed(&s, &user),
    };
    let rows: Vec<RuleRow> = rules
        .into_iter()
        .map(|r| {
            let rule = rule_view(r);
            let (state, open) = state_of(&rule, &open);
            RuleRow { rule, state, open }
        })
        .collect();
    let wanted = q.edit.as_deref().filter(|e| !e.is_empty());
    let edit = wanted
        .and_then(|id| rows.iter().find(|r| r.rule.id == id))
        .map(|r| &r.rule);
    if let (Some(id), None) = (wanted, edit) {
        let msg = format!("there is no rule `{}` to edit", quote(id));
        return fail(StatusCode::NOT_FOUND, msg, Some(&user));
    }
    let labels = edit.map(|r| labels_text(&r.labels)).unwrap_or_default();
    render(
        "rules.html",
        minijinja::context! {
            user, rows, edit, labels,
            severities => ["info", "warning", "critical"],
        },
    )
}

/// `k=v, k2=v2`: how the form shows and takes labels.
fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The check's query: the expression as typed.
#[derive(Debug, Deserialize)]
pub struct CheckQuery {
    #[serde(default)]
    pub expr: String,
}

/// The fragment under the expression field.
async fn check(
    State(c): State<Console>,
    SignedIn(user): SignedIn,
    q: Result<Query<CheckQuery>, QueryRejection>,
) -> Response {
    let expr = q.map(|Query(q)| q.expr).unwrap_or_default();
    if expr.trim().is_empty() {
        return render("rules_check.html", minijinja::context! { user, empty => true });
    }
    match check_expr(&mut c.alerts.clone(), expr.clone()).await {
        Ok(v) => {
            let caret = caret(&expr, &v);
            render("rules_check.html", minijinja::context! { user, v, expr, caret })
        }
        Err(e) => render("rules_check.html", minijinja::context! { user, failed => e.message }),
    }
}

/// Spaces up to the fault's column and a `^` under it; empty when valid.
fn caret(expr: &str, v: &RuleCheckView) -> String {
    match v.column {
        Some(col) if !v.valid => {
            let before = (col as usize).saturating_sub(1).min(expr.chars().count());
            format!("{}^", " ".repeat(before))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, enabled: bool) -> RuleView {
        rule_view(pb::AlertRule {
            id: id.into(),
            expr: "check_up == 0".into(),
            enabled: Some(enabled),
            ..pb::AlertRule::default()
        })
    }

    fn alert(rule: &str, state: pb::AlertState) -> pb::Alert {
        pb::Alert {
            rule_id: rule.into(),
            state: state as i32,
            ..pb::Alert::default()
        }
    }

    #[test]
    fn a_rule_state_comes_from_its_open_alerts() {
        let open = [
            alert("a", pb::AlertState::Acknowledged),
            alert("a", pb::AlertState::Firing),
            alert("b", pb::AlertState::Acknowledged),
        ];
        assert_eq!(state_of(&rule("a", true), &open), ("firing", 2));
        assert_eq!(state_of(&rule("b", true), &open), ("acknowledged", 1));
        assert_eq!(state_of(&rule("c", true), &open), ("ok", 0));
        assert_eq!(state_of(&rule("a", false), &open), ("disabled", 2));
    }

    #[test]
    fn the_caret_stands_under_the_column_in_characters() {
        let v = |valid, column| RuleCheckView {
            valid,
            column,
            reason: None,
            metrics: Vec::new(),
            for_: None,
        };
        assert_eq!(caret("é >> 1", &v(false, Some(4))), "   ^");
        assert_eq!(caret("ab", &v(false, Some(99))), "  ^", "never past the end");
        assert_eq!(caret("ab", &v(true, None)), "");
        assert_eq!(caret("ab", &v(false, Some(0))), "^");
    }

    #[test]
    fn labels_are_shown_as_the_form_takes_them() {
        let l = BTreeMap::from([("team".to_owned(), "web".to_owned()), ("a".to_owned(), "b".to_owned())]);
        assert_eq!(labels_text(&l), "a=b, team=web");
    }
}
