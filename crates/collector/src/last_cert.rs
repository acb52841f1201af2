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
        _ => None,
    }
}
