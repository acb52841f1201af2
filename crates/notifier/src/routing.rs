//! Routes: which channels a notification goes to. Every route whose
//! conditions all hold applies (so "every alert → the monitoring webhook"
//! is a route without conditions beside the severity routes); a channel
//! named by several routes is used once.

use pantau_config::RouteConfig;

use crate::notification::Notification;

/// The configured routes.
#[derive(Debug, Clone)]
pub struct Routes(Vec<RouteConfig>);

impl Routes {
    pub fn new(routes: Vec<RouteConfig>) -> Self {
        Self(routes)
    }

    /// The routes whose conditions all hold for `n`, in order.
    fn matching<'a>(&'a self, n: &'a Notification) -> impl Iterator<Item = &'a RouteConfig> + 'a {
        // Labels must hold for the group: common labels, or the single alert's labels.
        let labels = if n.alerts.len() == 1 {
            &n.alerts[0].labels
        } else {
            &n.common_labels
        };
        self.0.iter().filter(move |r| {
            (r.severity.is_empty() || r.severity.contains(&n.severity))
                && r.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
    }

    /// The channel names `n` goes to, in route order, each once.
    pub fn channels(&self, n: &Notification) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.matching(n) {
            for c in &r.channels {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
        out
    }

    /// The escalation policies of the routes `n` matches, each with the
    /// channels of those routes (each policy and channel once, in order).
    pub fn escalations(&self, n: &Notification) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.matching(n) {
            let Some(policy) = &r.escalation else { continue };
            let at = out.iter().position(|(p, _)| p == policy).unwrap_or_else(|| {
                out.push((policy.clone(), Vec::new()));
                out.len() - 1
            });
            for c in &r.channels {
                if !out[at].1.contains(c) {
                    out[at].1.push(c.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn route(severity: &[&str], labels: &[(&str, &str)], channels: &[&str]) -> RouteConfig {
        RouteConfig {
            severity: severity.iter().map(|s| (*s).to_owned()).collect(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            channels: channels.iter().map(|s| (*s).to_owned()).collect(),
            escalation: None,
        }
    }

    #[test]
    fn the_original_policy() {
        let routes = Routes::new(vec![
            route(&["critical"], &[], &["whatsapp", "email"]),
            route(&["warning"], &[], &["whatsapp"]),
            route(&[], &[], &["monitoring"]),
            route(&[], &[("team", "net")], &["noc"]),
        ]);
        let mut n = crate::notification::Notification::test("x");
        n.severity = "critical".into();
        assert_eq!(routes.channels(&n), ["whatsapp", "email", "monitoring"]);
        n.severity = "warning".into();
        n.alerts[0].labels.insert("team".into(), "net".into());
        assert_eq!(routes.channels(&n), ["whatsapp", "monitoring", "noc"]);
        n.severity = "info".into();
        assert_eq!(routes.channels(&n), ["monitoring", "noc"]);
        assert!(routes.escalations(&n).is_empty());
    }

    #[test]
    fn escalations_gather_their_routes_channels() {
        let mut pager = route(&["critical"], &[], &["pager"]);
        pager.escalation = Some("oncall".into());
        let mut noc = route(&[], &[("team", "net")], &["noc", "pager"]);
        noc.escalation = Some("oncall".into());
        let mut slow = route(&[], &[], &["mail"]);
        slow.escalation = Some("daily".into());
        let routes = Routes::new(vec![pager, noc, slow, route(&[], &[], &["monitoring"])]);
        let mut n = crate::notification::Notification::test("x");
        n.severity = "critical".into();
        n.alerts[0].labels.insert("team".into(), "net".into());
        assert_eq!(
            routes.escalations(&n),
            [
                ("oncall".to_owned(), vec!["pager".to_owned(), "noc".to_owned()]),
                ("daily".to_owned(), vec!["mail".to_owned()]),
            ]
        );
        n.severity = "info".into();
        n.alerts[0].labels.clear();
        assert_eq!(routes.escalations(&n), [("daily".to_owned(), vec!["mail".to_owned()])]);
    }
}
