//! Which incident a firing alert joins (see [`crate::incident`]).

use crate::deps::Deps;
use crate::incident::{Grouping, Incidents};
use crate::lifecycle::Alert;
use crate::series::Labels;

/// Whether two label sets agree on every label both have.
pub(super) fn shared_agree(a: &Labels, b: &Labels) -> bool {
    a.iter().all(|(k, v)| b.get(k).is_none_or(|w| w == v))
}

/// Where a firing alert belongs (see [`crate::incident`]): with its
/// dependency parent's incident when a parent holds it, with its own
/// children's when it is a parent, else by its labels.
pub(crate) fn grouping(a: &Alert, deps: &Deps, incs: &Incidents) -> Grouping {
    if let Some(cause) = a.suppressed_by.strip_prefix("depends:") {
        // `depends:<parent alert id>`: the parent's incident. (A bare word
        // would also parse as a target: the alert is looked up first.)
        if let Some(p) = incs.of_alert(cause) {
            return Grouping {
                key: p.group_key.clone(),
                root_cause: p.root_cause.clone(),
            };
        }
        // `depends:target:<id>` and the like, or a parent alert in no incident.
        return match cause.parse::<pantau_config::Dependency>() {
            Ok(d) if cause.contains(':') => Grouping::by_cause(&d.to_string()),
            _ => Grouping::by_cause(cause),
        };
    }
    if let Some(dep) = deps.as_parent(a) {
        return Grouping::by_cause(&dep);
    }
    Grouping::by_labels(a, incs.group_by())
}
