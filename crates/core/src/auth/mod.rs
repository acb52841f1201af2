//! Who may call: the token model shared by the gateway's REST API and every
//! gRPC server.
//!
//! - [`keys`]: JWTs signed and checked with the keys of `gateway.auth`
//!   (HS256 with a configured or generated secret, or RS256/ES256).
//! - [`Permission`] and [`Grants`]: the scopes a token's `scope` claim holds
//!   (`monitoring:read`, `monitoring:write`, `admin`, and the internal
//!   `service`) and what each allows.
//! - [`ServiceToken`]: the short-lived `service` token a process mints for
//!   its own gRPC calls, minted again when half its life has passed.

pub mod keys;

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

pub use keys::{Claims, KeyError, Keys, now_secs};

/// One permission a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Reads and streams (`monitoring:read`).
    Read,
    /// Changes: targets, rules, silences, acknowledgements, tests (`monitoring:write`).
    Write,
    /// Instances, promotion, demotion (`admin`, which holds read and write too).
    Admin,
    /// Internal calls only Pantau's own processes make (`service`, which
    /// holds every other permission).
    Service,
}

impl Permission {
    pub const ALL: [Self; 4] = [Self::Read, Self::Write, Self::Admin, Self::Service];

    /// The scope name in a token's `scope` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "monitoring:read",
            Self::Write => "monitoring:write",
            Self::Admin => "admin",
            Self::Service => "service",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Read => 1,
            Self::Write => 2,
            Self::Admin => 4,
            Self::Service => 8,
        }
    }
}

/// The permissions a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grants(u8);

impl Grants {
    pub fn of(permissions: &[Permission]) -> Self {
        Self(permissions.iter().fold(0, |a, p| a | p.bit()))
    }

    /// Reads a `scope` claim (space- or comma-separated). A word this
    /// version does not know grants nothing.
    pub fn parse(scope: &str) -> Self {
        let mut out = 0;
        for word in scope.split([' ', ',']).filter(|w| !w.is_empty()) {
            if let Some(p) = Permission::ALL.into_iter().find(|p| p.as_str() == word) {
                out |= p.bit();
            }
        }
        Self(out)
    }

    /// `service` holds everything; `admin` everything but `service`.
    pub fn allows(self, p: Permission) -> bool {
        if self.0 & Permission::Service.bit() != 0 {
            return true;
        }
        if p == Permission::Service {
            return false;
        }
        self.0 & (p.bit() | Permission::Admin.bit()) != 0
    }
}

impl fmt::Display for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = Permission::ALL
            .into_iter()
            .filter(|p| self.0 & p.bit() != 0)
            .map(Permission::as_str)
            .collect();
        if names.is_empty() {
            f.write_str("(none)")
        } else {
            f.write_str(&names.join(" "))
        }
    }
}

/// Who called a gRPC method; in the request's extensions once the auth
/// layer accepted its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject: a user, `cli:<name>`, `service:<process>`.
    pub subject: String,
    pub grants: Grants,
    /// The user a `service` caller acts for (the gateway relaying a REST
    /// call), from `x-pantau-on-behalf-of`; only a `service` caller's is believed.
    pub on_behalf_of: Option<String>,
}

impl Caller {
    /// The name for the audit log: `ana (via service:gateway)` or the subject.
    pub fn actor(&self) -> String {
        match &self.on_behalf_of {
            Some(user) => format!("{user} (via {})", self.subject),
            None => self.subject.clone(),
        }
    }
}

/// Where a process's own `service` token comes from.
#[derive(Debug)]
pub enum ServiceToken {
    /// Minted with this process's keys, again when half its life has passed.
    Minted {
        keys: std::sync::Arc<Keys>,
        subject: String,
        ttl: Duration,
        current: Mutex<Option<(String, u64)>>,
    },
    /// Given by configuration (`grpc.service_token`).
    Fixed(String),
}

impl ServiceToken {
    pub fn minted(keys: std::sync::Arc<Keys>, subject: impl Into<String>, ttl: Duration) -> Self {
        Self::Minted {
            keys,
            subject: subject.into(),
            ttl,
            current: Mutex::new(None),
        }
    }

    /// A token valid for at least half its lifetime.
    pub fn token(&self) -> Result<String, KeyError> {
        match self {
            Self::Fixed(t) => Ok(t.clone()),
            Self::Minted {
                keys,
                subject,
                ttl,
                current,
            } => {
                let now = now_secs();
                let mut cur = current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some((t, renew_at)) = cur.as_ref()
                    && now < *renew_at
                {
                    return Ok(t.clone());
                }
                let (token, claims) = keys.mint(subject, Permission::Service.as_str(), *ttl)?;
                let renew_at = claims.iat + (claims.exp - claims.iat) / 2;
                *cur = Some((token.clone(), renew_at));
                Ok(token)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_and_imply() {
        let g = Grants::parse("monitoring:read,monitoring:write something-new");
        assert_eq!(g.to_string(), "monitoring:read monitoring:write");
        assert!(g.allows(Permission::Write) && !g.allows(Permission::Admin));
        let admin = Grants::parse("admin");
        assert!(admin.allows(Permission::Read) && admin.allows(Permission::Write));
        assert!(!admin.allows(Permission::Service), "admin is not a service");
        let service = Grants::parse("service");
        assert!(Permission::ALL.into_iter().all(|p| service.allows(p)));
        assert!(!Grants::default().allows(Permission::Read));
        assert_eq!(Grants::default().to_string(), "(none)");
    }

    #[test]
    fn service_token_is_reused_then_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let keys = std::sync::Arc::new(Keys::load(&pantau_config::AuthConfig::default(), dir.path()).unwrap());
        let st = ServiceToken::minted(std::sync::Arc::clone(&keys), "service:test", Duration::from_secs(600));
        let a = st.token().unwrap();
        assert_eq!(a, st.token().unwrap(), "reused while young");
        let claims = keys.verify(&a).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.scope.as_str()),
            ("service:test", "service")
        );
        if let ServiceToken::Minted { current, .. } = &st {
            current.lock().unwrap().as_mut().unwrap().1 = 0;
        }
        std::thread::sleep(Duration::from_millis(1100));
        assert_ne!(a, st.token().unwrap(), "minted again past half its life");
    }
}
