//! What a result keeps of the last certificate a check read, to report
//! while the target's breaker is open and no check connects.

use std::time::SystemTime;

use pantau_proto::v1::{self, CheckResult, check_result::Detail};

/// The certificate part of `detail`, if it has one: what is kept of a check
/// to report while the breaker is open.
pub(crate) fn certificate_detail(detail: &Detail) -> Option<Detail> {
    match detail {
        Detail::Http(h) if h.certificate.is_some() => Some(Detail::Http(v1::HttpDetail {
            certificate: h.certificate.clone(),
            ..Default::default()
        })),
        Detail::Tls(t) if !t.chain.is_empty() => Some(Detail::Tls(t.clone())),
        Detail::Probe(p) if p.certificate.is_some() => Some(Detail::Probe(v1::ProbeDetail {
            peer: p.peer.clone(),
            certificate: p.certificate.clone(),
            ..Default::default()
        })),
        Detail::Mail(m) if m.certificate.is_some() => Some(Detail::Mail(v1::MailDetail {
            protocol: m.protocol.clone(),
            tls_mode: m.tls_mode.clone(),
            certificate: m.certificate.clone(),
            ..Default::default()
        })),
        _ => None,
    }
}

/// `detail`'s certificates marked as read earlier, their days counted to `now`.
pub(crate) fn last_known(mut detail: Detail, now: SystemTime) -> Detail {
    let mark = |c: &mut v1::CertificateInfo| {
        c.last_known = true;
        if let Some(after) = c.not_after.as_ref().and_then(pantau_core::time::from_timestamp) {
            let secs = match after.duration_since(now) {
                Ok(left) => i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                Err(past) => -i64::try_from(past.duration().as_secs()).unwrap_or(i64::MAX),
            };
            c.days_to_expiry = secs.div_euclid(86_400);
        }
    };
    match &mut detail {
        Detail::Http(h) => h.certificate.iter_mut().for_each(mark),
        Detail::Tls(t) => t.chain.iter_mut().for_each(mark),
        Detail::Mail(m) => m.certificate.iter_mut().for_each(mark),
        Detail::Probe(p) => p.certificate.iter_mut().for_each(mark),
        _ => {}
    }
    detail
}

/// Days to expiry of the certificate a result carries (the leaf's).
pub(crate) fn cert_days(r: &CheckResult) -> Option<i64> {
    match r.detail.as_ref()? {
        Detail::Http(h) => h.certificate.as_ref().map(|c| c.days_to_expiry),
        Detail::Tls(t) => t.chain.first().map(|c| c.days_to_expiry),
        Detail::Mail(m) => m.certificate.as_ref().map(|c| c.days_to_expiry),
        Detail::Probe(p) => p.certificate.as_ref().map(|c| c.days_to_expiry),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(days: Option<i64>) -> Detail {
        Detail::Probe(v1::ProbeDetail {
            peer: "127.0.0.1:50051".into(),
            metadata: [("status".to_owned(), "SERVING".to_owned())].into(),
            certificate: days.map(|d| v1::CertificateInfo {
                subject: "CN=grpc".into(),
                days_to_expiry: d,
                not_after: Some(pantau_core::time::to_timestamp(
                    SystemTime::now() + std::time::Duration::from_secs(u64::try_from(d).unwrap() * 86_400 + 3600),
                )),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn a_grpc_probes_certificate_is_kept_counted_and_marked() {
        // The days feed pantau_collector_cert_expiry_seconds, which the default
        // certificate-expiry rule (prometheus/rules/alerts.yml) reads.
        let r = CheckResult {
            detail: Some(probe(Some(9))),
            ..Default::default()
        };
        assert_eq!(cert_days(&r), Some(9));
        let none = CheckResult {
            detail: Some(probe(None)),
            ..Default::default()
        };
        assert_eq!(cert_days(&none), None);
        assert!(certificate_detail(&probe(None)).is_none());
        let kept = certificate_detail(&probe(Some(9))).unwrap();
        let Detail::Probe(p) = last_known(kept, SystemTime::now()) else {
            panic!()
        };
        let c = p.certificate.unwrap();
        assert!(c.last_known);
        assert_eq!(c.days_to_expiry, 9);
        assert!(p.metadata.is_empty(), "only the certificate part is kept");
    }
}
