//! What each gRPC method needs: one table for every Pantau service, like the
//! gateway's route table. Reads need `monitoring:read`, writes
//! `monitoring:write`, instance management `admin`, and what only Pantau's
//! own processes call `service`. Writes are audited.

use crate::auth::Permission;

/// What a call must present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: `grpc.health.v1`, for probes.
    Open,
    /// Any valid token: reflection, and methods this version does not know
    /// (which then answer UNIMPLEMENTED).
    Token,
    /// A token granting this permission.
    Need(Permission),
    /// The service checks a credential of its own: the sync API's
    /// instance-to-instance calls (the join token, an instance token).
    OwnCredential,
}

/// One method's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub access: Access,
    /// Recorded in the service's audit log, allowed or refused.
    pub audited: bool,
}

const fn read() -> Rule {
    Rule {
        access: Access::Need(Permission::Read),
        audited: false,
    }
}

const fn write() -> Rule {
    Rule {
        access: Access::Need(Permission::Write),
        audited: true,
    }
}

const fn admin() -> Rule {
    Rule {
        access: Access::Need(Permission::Admin),
        audited: true,
    }
}

/// Every method of `proto/pantau/v1`, by its path `/<package.Service>/<Method>`.
const RULES: &[(&str, Rule)] = &[
    ("/pantau.v1.CollectorService/ListTargets", read()),
    ("/pantau.v1.CollectorService/GetTarget", read()),
    ("/pantau.v1.CollectorService/UpsertTarget", write()),
    ("/pantau.v1.CollectorService/DeleteTarget", write()),
    ("/pantau.v1.CollectorService/ListLatestResults", read()),
    ("/pantau.v1.CollectorService/RunCheck", write()),
    ("/pantau.v1.CollectorService/PauseTarget", write()),
    ("/pantau.v1.CollectorService/ResumeTarget", write()),
    ("/pantau.v1.CollectorService/StreamResults", read()),
    ("/pantau.v1.CollectorService/GetHistory", read()),
    ("/pantau.v1.CollectorService/GetInterfaceTraffic", read()),
    // The gateway relays push monitors' heartbeats (their URL token is the
    // credential there); a heartbeat is a result, not a change, so not audited.
    (
        "/pantau.v1.CollectorService/Push",
        Rule {
            access: Access::Need(Permission::Service),
            audited: false,
        },
    ),
    ("/pantau.v1.WanDetectorService/DetectWan", read()),
    ("/pantau.v1.WanDetectorService/ListRouters", read()),
    ("/pantau.v1.WanDetectorService/ListInterfaces", read()),
    ("/pantau.v1.AlertEngineService/ListAlerts", read()),
    ("/pantau.v1.AlertEngineService/GetAlert", read()),
    ("/pantau.v1.AlertEngineService/AcknowledgeAlert", write()),
    ("/pantau.v1.AlertEngineService/ResolveAlert", write()),
    ("/pantau.v1.AlertEngineService/CreateAlert", write()),
    ("/pantau.v1.AlertEngineService/ListRules", read()),
    ("/pantau.v1.AlertEngineService/UpsertRule", write()),
    ("/pantau.v1.AlertEngineService/DeleteRule", write()),
    ("/pantau.v1.AlertEngineService/ValidateRule", read()),
    ("/pantau.v1.AlertEngineService/StreamAlerts", read()),
    ("/pantau.v1.AlertEngineService/CreateSilence", write()),
    ("/pantau.v1.AlertEngineService/ListSilences", read()),
    ("/pantau.v1.AlertEngineService/ExpireSilence", write()),
    ("/pantau.v1.AlertEngineService/ListMaintenanceWindows", read()),
    ("/pantau.v1.AlertEngineService/GetMaintenanceWindow", read()),
    ("/pantau.v1.AlertEngineService/PutMaintenanceWindow", write()),
    ("/pantau.v1.AlertEngineService/DeleteMaintenanceWindow", write()),
    ("/pantau.v1.AlertEngineService/ListIncidents", read()),
    ("/pantau.v1.AlertEngineService/GetIncident", read()),
    ("/pantau.v1.AlertEngineService/AcknowledgeIncident", write()),
    ("/pantau.v1.AlertEngineService/CommentIncident", write()),
    ("/pantau.v1.NotifierService/ListDeliveries", read()),
    ("/pantau.v1.NotifierService/ListChannels", read()),
    ("/pantau.v1.NotifierService/TestChannel", write()),
    ("/pantau.v1.NotifierService/ListEscalations", read()),
    (
        "/pantau.v1.SyncService/Register",
        Rule {
            access: Access::OwnCredential,
            audited: true,
        },
    ),
    (
        "/pantau.v1.SyncService/Heartbeat",
        Rule {
            access: Access::OwnCredential,
            audited: false,
        },
    ),
    (
        "/pantau.v1.SyncService/GetConfig",
        Rule {
            access: Access::OwnCredential,
            audited: false,
        },
    ),
    (
        "/pantau.v1.SyncService/PushResults",
        Rule {
            access: Access::OwnCredential,
            audited: false,
        },
    ),
    ("/pantau.v1.SyncService/ListInstances", read()),
    ("/pantau.v1.SyncService/GetStatus", read()),
    ("/pantau.v1.SyncService/GetFailoverOrder", read()),
    ("/pantau.v1.SyncService/ListLocationResults", read()),
    ("/pantau.v1.SyncService/GetLocationHistory", read()),
    ("/pantau.v1.SyncService/RemoveInstance", admin()),
    ("/pantau.v1.SyncService/Promote", admin()),
    ("/pantau.v1.SyncService/Demote", admin()),
];

/// The methods every server serves besides its own: health and reflection.
const COMMON: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Every known method as `(package.Service, Method)`: the table's and
/// [`COMMON`]'s (the label values of the gRPC metrics).
pub fn methods() -> impl Iterator<Item = (&'static str, &'static str)> {
    RULES
        .iter()
        .map(|(p, _)| *p)
        .chain(COMMON.iter().copied())
        .filter_map(split)
}

/// `(package.Service, Method)` of a known path; `None` for any other.
pub fn known(path: &str) -> Option<(&'static str, &'static str)> {
    RULES
        .iter()
        .map(|(p, _)| *p)
        .chain(COMMON.iter().copied())
        .find(|p| *p == path)
        .and_then(split)
}

fn split(path: &'static str) -> Option<(&'static str, &'static str)> {
    path.strip_prefix('/')?.split_once('/')
}

/// The rule of the method at `path`.
pub fn rule(path: &str) -> Rule {
    if path.starts_with("/grpc.health.v1.Health/") {
        return Rule {
            access: Access::Open,
            audited: false,
        };
    }
    RULES.iter().find(|(p, _)| *p == path).map_or(
        Rule {
            access: Access::Token,
            audited: false,
        },
        |(_, r)| *r,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn every_method_of_every_service_has_a_rule() {
        let set = prost_types::FileDescriptorSet::decode(pantau_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut seen = 0;
        for file in set.file.iter().filter(|f| f.package() == "pantau.v1") {
            for svc in &file.service {
                for m in &svc.method {
                    let path = format!("/pantau.v1.{}/{}", svc.name(), m.name());
                    assert!(
                        RULES.iter().any(|(p, _)| *p == path),
                        "{path} has no rule in grpc/access.rs"
                    );
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, RULES.len(), "a rule names a method that does not exist");
    }

    #[test]
    fn health_is_open_reflection_needs_a_token_and_writes_are_audited() {
        assert_eq!(rule("/grpc.health.v1.Health/Check").access, Access::Open);
        assert_eq!(
            rule("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo").access,
            Access::Token
        );
        assert_eq!(rule("/pantau.v1.Nope/Nope").access, Access::Token);
        let up = rule("/pantau.v1.CollectorService/UpsertTarget");
        assert_eq!(up.access, Access::Need(Permission::Write));
        assert!(up.audited);
        assert!(!rule("/pantau.v1.CollectorService/ListTargets").audited);
        assert_eq!(
            rule("/pantau.v1.SyncService/Promote").access,
            Access::Need(Permission::Admin)
        );
    }
}
