//! What a target depends on: another target, a router, one interface of
//! a router (e.g. the WAN link to an ISP), or a whole location (the
//! instance checking from there: every result it sends is down or stale). While a parent is down, the
//! alert engine suppresses the target's alerts and records the parent as
//! their cause; one notification goes out for the parent.
//!
//! Written as text, in YAML, REST and protobuf alike:
//! `target:<id>` (or a bare `<id>`), `router:<id>`,
//! `interface:<router id>/<interface name>`, `location:<id>`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::Invalid;
use crate::validate::is_subject_token;

/// Most dependencies one target may have.
pub const MAX_DEPENDENCIES: usize = 32;
/// Longest interface name, in bytes.
const MAX_INTERFACE: usize = 128;

/// One parent of a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dependency {
    Target(String),
    Router(String),
    Interface { router: String, interface: String },
    Location(String),
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Target(id) => write!(f, "target:{id}"),
            Self::Router(id) => write!(f, "router:{id}"),
            Self::Interface { router, interface } => write!(f, "interface:{router}/{interface}"),
            Self::Location(id) => write!(f, "location:{id}"),
        }
    }
}

impl std::str::FromStr for Dependency {
    type Err = String;

    /// Parses the text form; the error says what is allowed.
    fn from_str(s: &str) -> Result<Self, String> {
        const ID: &str = "1–128 characters of letters, digits, `-` or `_`";
        let id = |kind: &str, v: &str| {
            if is_subject_token(v) {
                Ok(v.to_owned())
            } else {
                Err(format!("the {kind} id must be {ID}"))
            }
        };
        match s.split_once(':') {
            None => Ok(Self::Target(id("target", s)?)),
            Some(("target", v)) => Ok(Self::Target(id("target", v)?)),
            Some(("router", v)) => Ok(Self::Router(id("router", v)?)),
            Some(("location", v)) => Ok(Self::Location(id("location", v)?)),
            Some(("interface", v)) => {
                let Some((router, interface)) = v.split_once('/') else {
                    return Err("write `interface:<router id>/<interface name>`".to_owned());
                };
                let router = id("router", router)?;
                if interface.is_empty() || interface.len() > MAX_INTERFACE || interface.chars().any(char::is_control) {
                    return Err(format!(
                        "the interface name must be 1–{MAX_INTERFACE} bytes without control characters"
                    ));
                }
                Ok(Self::Interface {
                    router,
                    interface: interface.to_owned(),
                })
            }
            Some(_) => {
                Err("must be `target:<id>`, `router:<id>`, `interface:<router>/<name>` or `location:<id>`".to_owned())
            }
        }
    }
}

/// Parses `raw` for the target `own`, each problem keyed
/// `<prefix>.depends_on[j]`.
pub(super) fn parse(own: &str, raw: &[String], mut add: impl FnMut(String, &str, String)) -> Vec<Dependency> {
    if raw.len() > MAX_DEPENDENCIES {
        add(
            "depends_on".to_owned(),
            "",
            format!("must list at most {MAX_DEPENDENCIES} dependencies"),
        );
        return Vec::new();
    }
    let mut out: Vec<Dependency> = Vec::with_capacity(raw.len());
    for (j, text) in raw.iter().enumerate() {
        let key = format!("depends_on[{j}]");
        match text.parse::<Dependency>() {
            Ok(Dependency::Target(id)) if id == own => add(key, text, "a target cannot depend on itself".into()),
            Ok(d) if out.contains(&d) => add(key, text, "is listed twice".into()),
            Ok(d) => out.push(d),
            Err(why) => add(key, text, why),
        }
    }
    out
}

/// Refuses cycles among targets' `target:` dependencies: each target on a
/// cycle is named once, under `<prefix>[i].depends_on`, with the cycle.
pub fn cycles<'a>(
    targets: impl IntoIterator<Item = (&'a str, &'a [Dependency])>,
    key: impl Fn(&str) -> String,
) -> Vec<Invalid> {
    let graph: BTreeMap<&str, Vec<&str>> = targets
        .into_iter()
        .map(|(id, deps)| {
            let parents = deps
                .iter()
                .filter_map(|d| match d {
                    Dependency::Target(p) => Some(p.as_str()),
                    _ => None,
                })
                .collect();
            (id, parents)
        })
        .collect();
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for &start in graph.keys() {
        if let Some(cycle) = find_cycle(&graph, start)
            && !cycle.iter().any(|t| reported.contains(t))
        {
            reported.extend(cycle.iter().copied());
            let text = cycle.join(" → ");
            out.push(Invalid {
                key: key(start),
                value: crate::types::quote(&text).into_owned(),
                allowed: "must not form a cycle of dependencies".to_owned(),
            });
        }
    }
    out
}

/// A path from `start` back to itself, if there is one.
fn find_cycle<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>, start: &'a str) -> Option<Vec<&'a str>> {
    // Depth-first with an explicit stack; `path` is the current chain.
    let mut path = vec![start];
    let mut next = vec![0usize];
    let mut done = BTreeSet::new();
    while let (Some(&node), Some(i)) = (path.last(), next.last_mut()) {
        let parents = graph.get(node).map_or(&[][..], Vec::as_slice);
        if let Some(&p) = parents.get(*i) {
            *i += 1;
            if p == start {
                path.push(start);
                return Some(path);
            }
            if !path.contains(&p) && !done.contains(p) {
                path.push(p);
                next.push(0);
            }
        } else {
            done.insert(node);
            path.pop();
            next.pop();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_forms_parse_and_print_back() {
        for (text, want) in [
            ("uplink", Dependency::Target("uplink".into())),
            ("target:uplink", Dependency::Target("uplink".into())),
            ("router:core-1", Dependency::Router("core-1".into())),
            (
                "interface:core-1/sfp-sfpplus1",
                Dependency::Interface {
                    router: "core-1".into(),
                    interface: "sfp-sfpplus1".into(),
                },
            ),
            ("location:jakarta-1", Dependency::Location("jakarta-1".into())),
            (
                "interface:r/1/1/1",
                Dependency::Interface {
                    router: "r".into(),
                    interface: "1/1/1".into(),
                },
            ),
        ] {
            let d: Dependency = text.parse().unwrap();
            assert_eq!(d, want);
            assert_eq!(d.to_string().parse::<Dependency>().unwrap(), want);
        }
    }

    #[test]
    fn hostile_dependencies_are_refused_saying_why() {
        for (text, why) in [
            ("", "target id"),
            ("site:x", "must be `target:<id>`"),
            ("router:", "router id"),
            ("router:a b", "router id"),
            ("interface:r1", "interface:<router id>/<interface name>"),
            ("interface:r1/", "interface name"),
            ("interface:/eth0", "router id"),
            ("interface:r1/a\u{0}b", "interface name"),
            ("target:ü", "target id"),
            ("location:", "location id"),
            ("location:a/b", "location id"),
            ("location:jkt:1", "location id"),
        ] {
            let e = text.parse::<Dependency>().unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        let long = format!("interface:r/{}", "x".repeat(129));
        assert!(long.parse::<Dependency>().unwrap_err().contains("interface name"));
        assert!("x".repeat(129).parse::<Dependency>().is_err());
        let huge = format!("location:{}", "l".repeat(1 << 20));
        assert!(huge.parse::<Dependency>().unwrap_err().contains("location id"));
    }

    #[test]
    fn self_duplicates_and_too_many_are_named() {
        let mut seen = Vec::new();
        let raw = vec!["web".to_owned(), "uplink".to_owned(), "target:uplink".to_owned()];
        let deps = parse("web", &raw, |k, v, why| seen.push((k, v.to_owned(), why)));
        assert_eq!(deps, [Dependency::Target("uplink".into())]);
        assert_eq!(seen[0].0, "depends_on[0]");
        assert!(seen[0].2.contains("itself"));
        assert_eq!(seen[1].0, "depends_on[2]");
        let many: Vec<String> = (0..=MAX_DEPENDENCIES).map(|i| format!("t{i}")).collect();
        let mut keys = Vec::new();
        assert!(parse("web", &many, |k, _, _| keys.push(k)).is_empty());
        assert_eq!(keys, ["depends_on"]);
    }

    #[test]
    fn cycles_are_found_and_named_once() {
        let target = |id: &str| Dependency::Target(id.into());
        let to_b = [target("b")];
        let to_c = [target("c"), Dependency::Router("r".into())];
        let to_a = [target("a")];
        let none: [Dependency; 0] = [];
        let found = cycles(
            [
                ("a", &to_b[..]),
                ("b", &to_c[..]),
                ("c", &to_a[..]),
                ("d", &to_a[..]),
                ("e", &none[..]),
            ],
            |id| format!("targets.{id}.depends_on"),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, "targets.a.depends_on");
        assert_eq!(found[0].value, "a → b → c → a");
        let none = cycles([("d", &to_a[..]), ("a", &none[..])], ToOwned::to_owned);
        assert!(none.is_empty());
    }
}
