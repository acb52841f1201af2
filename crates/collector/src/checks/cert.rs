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
        last_known: false,
    })
}

/// A down message if the certificate has expired, or expires within
/// `warn_days` (0 disables the warning).
pub fn expiry_problem(c: &CertificateInfo, warn_days: u32) -> Option<String> {
    expiry_problem_at(c, warn_days, SystemTime::now())
}

fn expiry_problem_at(c: &CertificateInfo, warn_days: u32, now: SystemTime) -> Option<String> {
    let not_after = c.not_after.as_ref().and_then(pantau_core::time::from_timestamp);
    if c.days_to_expiry < 0 || not_after.is_some_and(|t| t <= now) {
        let ago = not_after
            .and_then(|t| now.duration_since(t).ok())
            .map_or_else(|| count(c.days_to_expiry.unsigned_abs(), "day"), span);
        return Some(format!("certificate of {} expired {ago} ago", c.subject));
    }
    (warn_days > 0 && c.days_to_expiry < i64::from(warn_days)).then(|| {
        let left = not_after
            .and_then(|t| t.duration_since(now).ok())
            .map_or_else(|| count(c.days_to_expiry.unsigned_abs(), "day"), span);
        format!(
            "certificate of {} expires in {left} (warning below {})",
            c.subject,
            count(u64::from(warn_days), "day")
        )
    })
}

/// `n unit`, or `n units`.
fn count(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// A span in whole days, or whole hours (minutes) when shorter, rounded down.
fn span(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 86_400 {
        count(secs / 86_400, "day")
    } else if secs >= 3_600 {
        count(secs / 3_600, "hour")
    } else {
        count(secs / 60, "minute")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expiring(now: SystemTime, offset: i64) -> CertificateInfo {
        let at = if offset >= 0 {
            now + Duration::from_secs(offset.unsigned_abs())
        } else {
            now - Duration::from_secs(offset.unsigned_abs())
        };
        CertificateInfo {
            subject: "CN=svc".into(),
            not_after: Some(pantau_core::time::to_timestamp(at)),
            days_to_expiry: offset.div_euclid(86_400),
            ..Default::default()
        }
    }

    #[test]
    fn expiry_is_worded_in_the_unit_that_fits_with_plurals() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let said = |offset: i64| expiry_problem_at(&expiring(now, offset), 14, now).unwrap_or_default();
        assert_eq!(said(-2 * 3_600), "certificate of CN=svc expired 2 hours ago");
        assert_eq!(said(-(5 * 86_400 + 43_200)), "certificate of CN=svc expired 5 days ago");
        assert_eq!(said(-86_400), "certificate of CN=svc expired 1 day ago");
        assert_eq!(said(-90), "certificate of CN=svc expired 1 minute ago");
        assert_eq!(
            said(5 * 86_400 + 3_600),
            "certificate of CN=svc expires in 5 days (warning below 14 days)"
        );
        assert_eq!(
            said(3 * 3_600),
            "certificate of CN=svc expires in 3 hours (warning below 14 days)"
        );
        assert_eq!(said(30 * 86_400), "");
    }
}
