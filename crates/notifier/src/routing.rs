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

    /// The channel names `n` goes to, in route order, each once.
    pub fn channels(&self, n: &Notification) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.0 {
            if !r.severity.is_empty() && !r.severity.contains(&n.severity) {
                continue;
            }
            // Labels must hold for the group: common labels, or the single alert's labels.
            let labels = if n.alerts.len() == 1 {
                &n.alerts[0].labels
            } else {
                &n.common_labels
            };
            if !r.labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                continue;
            }
            for c in &r.channels {
                if !out.contains(c) {
                    out.push(c.clone());
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
    }
}
