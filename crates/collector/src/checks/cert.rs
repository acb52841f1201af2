//! What a check reports of a TLS certificate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_proto::v1::CertificateInfo;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Parses a DER certificate; `None` if it is not one.
pub fn info(der: &[u8], now: SystemTime) -> Option<CertificateInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let not_after = cert.validity().not_after.timestamp();
    let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(s) => Some((*s).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(CertificateInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: u64::try_from(not_after)
            .ok()
            .map(|s| pantau_core::time::to_timestamp(UNIX_EPOCH + Duration::from_secs(s))),
        days_to_expiry: (not_after - now_secs).div_euclid(86_400),
        dns_names,
    })
}

/// A down message if the certificate expires within `warn_days` (0 disables).
pub fn expiry_problem(c: &CertificateInfo, warn_days: u32) -> Option<String> {
    if c.days_to_expiry < 0 {
        return Some(format!(
            "certificate of {} expired {} days ago",
            c.subject, -c.days_to_expiry
        ));
    }
    (warn_days > 0 && c.days_to_expiry < i64::from(warn_days)).then(|| {
        format!(
            "certificate of {} expires in {} days (warning below {warn_days})",
            c.subject, c.days_to_expiry
        )
    })
}
