//! `grpc`: a `grpc.health.v1.Health/Check` of one service (or of the whole
//! server), over plain HTTP/2 or TLS.

use super::parse::{Problems, tls_files};
use super::{CheckType, HostPort, RawTarget, TargetSpec, TlsFiles};

/// Longest gRPC service name a check may ask about.
pub const MAX_SERVICE: usize = 200;

/// A gRPC health check.
#[derive(Debug, Clone, PartialEq)]
pub struct GrpcTarget {
    pub address: HostPort,
    /// The service whose health is asked (`pantau.v1.CollectorService`);
    /// empty asks about the server as a whole.
    pub service: String,
    /// Speak TLS (ALPN h2); plain HTTP/2 when unset or false.
    pub use_tls: Option<bool>,
    /// TLS only: the name to ask for (SNI) and verify; the address's host when unset.
    pub server_name: Option<String>,
    /// TLS only: verify the chain and name; true when unset.
    pub verify_tls: Option<bool>,
    /// TLS only.
    pub tls: TlsFiles,
}

/// Fields a `grpc` target takes.
pub(super) const FIELDS: &[&str] = &[
    "address",
    "service",
    "use_tls",
    "server_name",
    "verify_tls",
    "ca_file",
    "client_cert",
    "client_key",
];

/// The typed spec of a `grpc` target, or `None` with the problems added.
pub(super) fn parse(r: &RawTarget, p: &mut Problems<'_>) -> Option<TargetSpec> {
    let service = r.service.clone().unwrap_or_default();
    if service.len() > MAX_SERVICE {
        p.add("service", &service, format!("must be at most {MAX_SERVICE} bytes"));
    } else if !service.bytes().all(|b| b.is_ascii_graphic()) {
        p.add(
            "service",
            &service,
            "must be a gRPC service name without spaces, e.g. pantau.v1.CollectorService",
        );
    }
    if r.use_tls != Some(true) {
        for (field, set) in [
            ("server_name", r.server_name.is_some()),
            ("verify_tls", r.verify_tls.is_some()),
            ("ca_file", r.ca_file.is_some()),
            ("client_cert", r.client_cert.is_some()),
        ] {
            if set {
                p.add(field, "", "applies only with use_tls: true");
            }
        }
    }
    let a = p.required(r.address.as_deref(), CheckType::Grpc, "address", ", as host:port")?;
    let address = a.parse::<HostPort>().map_err(|why| p.add("address", a, why)).ok();
    let tls = tls_files(r, p)?;
    Some(TargetSpec::Grpc(Box::new(GrpcTarget {
        address: address?,
        service,
        use_tls: r.use_tls,
        server_name: r.server_name.clone(),
        verify_tls: r.verify_tls,
        tls,
    })))
}

/// Sets the raw fields of `g`.
pub(super) fn to_raw(g: GrpcTarget, r: &mut RawTarget) {
    r.address = Some(g.address.to_string());
    r.service = (!g.service.is_empty()).then_some(g.service);
    r.use_tls = g.use_tls;
    r.server_name = g.server_name;
    r.verify_tls = g.verify_tls;
    r.set_tls(g.tls);
}

#[cfg(test)]
mod tests {
    use super::super::refused;
    use crate::{CheckType, RawTarget, TargetSpec};

    fn grpc() -> RawTarget {
        let mut r = RawTarget::new("g", CheckType::Grpc);
        r.address = Some("127.0.0.1:50051".into());
        r
    }

    #[test]
    fn a_grpc_target_parses_and_round_trips() {
        let mut r = grpc();
        r.service = Some("pantau.v1.CollectorService".into());
        r.use_tls = Some(true);
        r.server_name = Some("localhost".into());
        let t = r.clone().parse("t").unwrap();
        let TargetSpec::Grpc(g) = &t.spec else { panic!("{t:?}") };
        assert_eq!(g.service, "pantau.v1.CollectorService");
        assert_eq!(g.address.port(), 50051);
        assert_eq!(RawTarget::from(t), r);
    }

    #[test]
    fn a_bad_grpc_target_is_refused_naming_the_field() {
        let mut r = grpc();
        r.address = None;
        assert!(refused(r).contains("t.address"));
        let mut r = grpc();
        r.address = Some("no-port".into());
        assert!(refused(r).contains("t.address"));
        let mut r = grpc();
        r.service = Some("x".repeat(10_000));
        let e = refused(r);
        assert!(e.contains("t.service") && e.contains("at most 200"), "{e}");
        let mut r = grpc();
        r.service = Some("has space\u{0}".into());
        assert!(refused(r).contains("t.service"));
        let mut r = grpc();
        r.verify_tls = Some(false);
        let e = refused(r);
        assert!(e.contains("t.verify_tls") && e.contains("use_tls"), "{e}");
        let mut r = grpc();
        r.url = Some("http://x".into());
        assert!(refused(r).contains("t.url"));
        let mut r = grpc();
        r.use_tls = Some(true);
        r.client_cert = Some("c.pem".into());
        assert!(refused(r).contains("t.client_key"));
    }
}
