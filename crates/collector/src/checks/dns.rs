//! DNS: ask for a name's records (A, AAAA, CNAME, MX, TXT, NS), through the
//! system's resolver or a given one, and compare with the expected answers.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType as Rt;
use hickory_resolver::{Resolver, TokioResolver};
use pantau_config::RecordType;
use pantau_proto::v1::{DnsDetail, FailureReason, check_result::Detail};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::Outcome;

/// The system resolver, built on first use.
#[derive(Default)]
pub struct Dns {
    system: OnceCell<Result<Arc<TokioResolver>, String>>,
}

fn record_type(r: RecordType) -> Rt {
    match r {
        RecordType::A => Rt::A,
        RecordType::Aaaa => Rt::AAAA,
        RecordType::Cname => Rt::CNAME,
        RecordType::Mx => Rt::MX,
        RecordType::Txt => Rt::TXT,
        RecordType::Ns => Rt::NS,
    }
}

fn custom(addr: SocketAddr) -> Result<TokioResolver, String> {
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    for c in &mut ns.connections {
        c.port = addr.port();
    }
    let cfg = ResolverConfig::from_parts(None, vec![], vec![ns]);
    Resolver::builder_with_config(cfg, TokioRuntimeProvider::default())
        .build()
        .map_err(|e| format!("cannot build a resolver for {addr}: {e}"))
}

impl Dns {
    async fn system(&self) -> Result<Arc<TokioResolver>, String> {
        self.system
            .get_or_init(|| async {
                TokioResolver::builder_tokio()
                    .and_then(hickory_resolver::ResolverBuilder::build)
                    .map(Arc::new)
                    .map_err(|e| format!("cannot read the system's resolver configuration: {e}"))
            })
            .await
            .clone()
    }

    /// Resolves `name`; the caller bounds the time.
    pub async fn check(
        &self,
        name: &str,
        rtype: RecordType,
        resolver: Option<SocketAddr>,
        expected: &[String],
        started: Instant,
    ) -> Outcome {
        let (r, via) = match resolver {
            Some(addr) => match custom(addr) {
                Ok(r) => (Arc::new(r), addr.to_string()),
                Err(e) => return Outcome::down(started.elapsed(), FailureReason::Internal, e),
            },
            None => match self.system().await {
                Ok(r) => (r, "system".to_owned()),
                Err(e) => return Outcome::down(started.elapsed(), FailureReason::Internal, e),
            },
        };
        let answers: Result<Vec<String>, String> = match rtype {
            // Address lookups also consult the hosts file, as the system does.
            RecordType::A | RecordType::Aaaa => r
                .lookup_ip(name)
                .await
                .map(|l| {
                    l.iter()
                        .filter(|ip| ip.is_ipv4() == (rtype == RecordType::A))
                        .map(|ip| ip.to_string())
                        .collect()
                })
                .map_err(|e| e.to_string()),
            _ => r
                .lookup(name, record_type(rtype))
                .await
                .map(|l| l.answers().iter().map(|rec| rec.data.to_string()).collect())
                .map_err(|e| e.to_string()),
        };
        let latency = started.elapsed();
        let rtype_name = format!("{rtype:?}").to_uppercase();
        let answers = match answers {
            Ok(a) if !a.is_empty() => a,
            Ok(_) => {
                return Outcome::down(
                    latency,
                    FailureReason::Dns,
                    format!("{name} has no {rtype_name} record (resolver {via})"),
                );
            }
            Err(e) => {
                return Outcome::down(
                    latency,
                    FailureReason::Dns,
                    format!("{rtype_name} lookup of {name} via {via} failed: {e}"),
                );
            }
        };
        let detail = Detail::Dns(DnsDetail {
            record_type: rtype_name.clone(),
            answers: answers.clone(),
            resolver: via,
        });
        let normal = |s: &str| s.trim_end_matches('.').trim_matches('"').to_ascii_lowercase();
        let missing: Vec<&String> = expected
            .iter()
            .filter(|want| {
                !answers
                    .iter()
                    .any(|a| normal(a) == normal(want) || normal(a).ends_with(&format!(" {}", normal(want))))
            })
            .collect();
        if missing.is_empty() {
            Outcome::up(latency, Some(detail))
        } else {
            Outcome::down(
                latency,
                FailureReason::Assertion,
                format!("{rtype_name} answers for {name} are {answers:?}, missing {missing:?}"),
            )
            .with_detail(detail)
        }
    }
}
