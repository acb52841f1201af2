//! `gateway.console` and `gateway.status_pages`: the web console served by
//! the gateway, and the public status pages (no login) with their badges.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::{self, format as fmt_d};
use super::types::quote;
use super::{Invalid, is_token};

/// The web console behind login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console under `/console` (and `/` redirects to it).
    pub enabled: bool,
    /// How long a sign-in lasts (5m–30d); the session is then refused and
    /// the browser is sent to the sign-in page.
    #[serde(with = "duration")]
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` even when the request did not say
    /// it came over TLS (`X-Forwarded-Proto: https` always does).
    pub secure_cookies: bool,
    /// Create the user `admin` with a generated password (printed once on
    /// standard error) when the gateway starts with no user at all.
    pub create_first_admin: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            create_first_admin: true,
        }
    }
}

/// The most status pages, groups per page and targets per group.
pub const MAX_PAGES: usize = 100;
pub const MAX_GROUPS: usize = 50;
pub const MAX_GROUP_TARGETS: usize = 500;
/// The longest title, group name and description, in bytes.
pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 2000;

/// One public status page, served without login at `/status/{slug}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPageConfig {
    /// The page's address: `/status/{slug}` (1–64 of `a-z`, `0-9`, `-`).
    pub slug: String,
    /// The heading.
    pub title: String,
    /// A paragraph under the heading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Groups of targets, shown in this order.
    pub groups: Vec<StatusGroupConfig>,
    /// Show each target's latest latency (default true).
    #[serde(default = "yes")]
    pub show_latency: bool,
    /// Show the failure reason of a target that is down (default false:
    /// error text can name internal hosts).
    #[serde(default)]
    pub show_errors: bool,
}

fn yes() -> bool {
    true
}

/// A group of targets on a status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusGroupConfig {
    /// The group's heading.
    pub name: String,
    /// Target ids (`collector.targets[].id`, or targets made over the API).
    pub targets: Vec<String>,
}

impl StatusPageConfig {
    /// Every target id on the page, in order.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().flat_map(|g| g.targets.iter().map(String::as_str))
    }
}

/// Whether `s` is a status page slug.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn add(out: &mut Vec<Invalid>, key: String, value: &str, allowed: impl Into<String>) {
    out.push(Invalid {
        key,
        value: quote(value).into_owned(),
        allowed: allowed.into(),
    });
}

fn text(out: &mut Vec<Invalid>, key: String, value: &str, max: usize) {
    if value.trim().is_empty() || value.len() > max {
        add(out, key, value, format!("must be 1–{max} bytes of text"));
    }
}

/// Every problem of `gateway.console` and `gateway.status_pages`, naming its key.
pub(super) fn problems(console: &ConsoleConfig, pages: &[StatusPageConfig]) -> Vec<Invalid> {
    let mut out = Vec::new();
    let (min, max) = (Duration::from_secs(300), Duration::from_secs(30 * 86_400));
    if !(min..=max).contains(&console.session_ttl) {
        out.push(Invalid {
            key: "gateway.console.session_ttl".to_owned(),
            value: fmt_d(console.session_ttl),
            allowed: format!("must be between {} and {}", fmt_d(min), fmt_d(max)),
        });
    }
    if pages.len() > MAX_PAGES {
        add(
            &mut out,
            "gateway.status_pages".to_owned(),
            &format!("{} pages", pages.len()),
            format!("at most {MAX_PAGES} pages"),
        );
    }
    let mut slugs = HashSet::new();
    for (i, page) in pages.iter().enumerate() {
        let at = format!("gateway.status_pages[{i}]");
        if !is_slug(&page.slug) {
            add(
                &mut out,
                format!("{at}.slug"),
                &page.slug,
                "must be 1–64 characters of a-z, 0-9 or `-`",
            );
        } else if !slugs.insert(page.slug.as_str()) {
            add(
                &mut out,
                format!("{at}.slug"),
                &page.slug,
                "must be unique: another page has it",
            );
        }
        text(&mut out, format!("{at}.title"), &page.title, MAX_TITLE);
        if let Some(d) = &page.description {
            text(&mut out, format!("{at}.description"), d, MAX_DESCRIPTION);
        }
        if page.groups.is_empty() || page.groups.len() > MAX_GROUPS {
            add(
                &mut out,
                format!("{at}.groups"),
                &format!("{} groups", page.groups.len()),
                format!("must hold 1–{MAX_GROUPS} groups"),
            );
        }
        for (j, g) in page.groups.iter().enumerate().take(MAX_GROUPS) {
            let at = format!("{at}.groups[{j}]");
            text(&mut out, format!("{at}.name"), &g.name, MAX_TITLE);
            if g.targets.is_empty() || g.targets.len() > MAX_GROUP_TARGETS {
                add(
                    &mut out,
                    format!("{at}.targets"),
                    &format!("{} targets", g.targets.len()),
                    format!("must hold 1–{MAX_GROUP_TARGETS} target ids"),
                );
            }
            for (k, t) in g.targets.iter().enumerate().take(MAX_GROUP_TARGETS) {
                if !is_token(t) {
                    add(
                        &mut out,
                        format!("{at}.targets[{k}]"),
                        t,
                        "must be a target id: 1–128 characters of letters, digits, `-` or `_`",
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> StatusPageConfig {
        StatusPageConfig {
            slug: "public".to_owned(),
            title: "Public services".to_owned(),
            description: None,
            groups: vec![StatusGroupConfig {
                name: "Web".to_owned(),
                targets: vec!["web".to_owned()],
            }],
            show_latency: true,
            show_errors: false,
        }
    }

    fn keys(pages: &[StatusPageConfig]) -> Vec<String> {
        problems(&ConsoleConfig::default(), pages)
            .into_iter()
            .map(|p| p.key)
            .collect()
    }

    #[test]
    fn a_good_page_passes() {
        assert!(keys(&[page()]).is_empty());
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut bad = page();
        bad.slug = "Not A Slug".to_owned();
        bad.title = "x".repeat(MAX_TITLE + 1);
        bad.description = Some("   ".to_owned());
        bad.groups[0].targets = vec!["ok".to_owned(), "no spaces".to_owned(), "é".repeat(300)];
        bad.groups.push(StatusGroupConfig {
            name: String::new(),
            targets: vec![],
        });
        assert_eq!(
            keys(&[bad]),
            [
                "gateway.status_pages[0].slug",
                "gateway.status_pages[0].title",
                "gateway.status_pages[0].description",
                "gateway.status_pages[0].groups[0].targets[1]",
                "gateway.status_pages[0].groups[0].targets[2]",
                "gateway.status_pages[0].groups[1].name",
                "gateway.status_pages[0].groups[1].targets",
            ]
        );
    }

    #[test]
    fn huge_values_are_quoted_short() {
        let mut bad = page();
        bad.slug = "A".repeat(100_000);
        let p = problems(&ConsoleConfig::default(), &[bad]);
        assert!(p[0].value.len() < 200, "{}", p[0].value.len());
    }

    #[test]
    fn duplicate_slugs_and_empty_pages_are_refused() {
        let mut empty = page();
        empty.groups.clear();
        assert_eq!(
            keys(&[page(), page(), empty]),
            [
                "gateway.status_pages[1].slug",
                "gateway.status_pages[2].slug",
                "gateway.status_pages[2].groups"
            ]
        );
    }

    #[test]
    fn session_ttl_is_bounded() {
        let c = ConsoleConfig {
            session_ttl: Duration::from_secs(1),
            ..ConsoleConfig::default()
        };
        let p = problems(&c, &[]);
        assert_eq!(p[0].key, "gateway.console.session_ttl");
    }

    /// What the YAML loader says about hostile status pages: the key, never a panic or a default.
    fn load_err(yaml: &str) -> String {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), yaml).unwrap();
        let opts = crate::LoadOptions {
            file: Some(f.path().to_owned()),
            env: vec![],
        };
        crate::Config::load(&opts).unwrap_err().to_string()
    }

    #[test]
    fn hostile_yaml_is_refused_naming_the_key() {
        let cases = [
            // wrong types
            ("gateway:\n  status_pages: 12\n", "status_pages"),
            (
                "gateway:\n  status_pages:\n    - slug: s\n      title: T\n      groups: nope\n",
                "groups",
            ),
            (
                "gateway:\n  status_pages:\n    - slug: s\n      title: T\n      show_errors: maybe\n      groups: [{name: g, targets: [a]}]\n",
                "show_errors",
            ),
            ("gateway:\n  console:\n    session_ttl: forever\n", "session_ttl"),
            ("gateway:\n  console:\n    enabled: 3\n", "enabled"),
            // unknown fields and values
            (
                "gateway:\n  status_pages:\n    - slug: s\n      title: T\n      colour: red\n      groups: [{name: g, targets: [a]}]\n",
                "colour",
            ),
            ("gateway:\n  console:\n    theme: dark\n", "theme"),
            // missing fields
            (
                "gateway:\n  status_pages:\n    - slug: s\n      groups: [{name: g, targets: [a]}]\n",
                "title",
            ),
            // out of range
            (
                "gateway:\n  console:\n    session_ttl: 1s\n",
                "gateway.console.session_ttl",
            ),
            (
                "gateway:\n  status_pages:\n    - slug: ../etc\n      title: T\n      groups: [{name: g, targets: [a]}]\n",
                "gateway.status_pages[0].slug",
            ),
        ];
        for (yaml, key) in cases {
            let e = load_err(yaml);
            assert!(e.contains(key), "{yaml:?} → {e}");
        }
        let huge = format!(
            "gateway:\n  status_pages:\n    - slug: s\n      title: T\n      groups: [{{name: g, targets: [\"{}\"]}}]\n",
            "x".repeat(1 << 20)
        );
        let e = load_err(&huge);
        assert!(
            e.contains("gateway.status_pages[0].groups[0].targets[0]") && e.len() < 2000,
            "{}",
            e.len()
        );
        let garbage = load_err("gateway:\n  status_pages: [\u{0}\u{1}{{{\n");
        assert!(!garbage.is_empty());
    }
}
