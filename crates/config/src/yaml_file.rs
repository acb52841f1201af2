//! The YAML file, read in one streaming pass.
//!
//! serde-saphyr deserializes straight from the parser's events, with no tree
//! of the whole document. Everything but `collector.targets` becomes
//! figment's value tree, which the environment then overrides; the targets,
//! by far the largest part of a big file, are parsed one by one as they are
//! read and never become a tree at all.
//!
//! With serde_yaml behind figment's provider, a file of 100,000 targets (9 MB)
//! took 526 MiB to parse (every event of the document held at once), and the
//! whole load (`pantau config check`) peaked at 731 MiB.

use std::fmt;
use std::sync::Arc;

use figment::value::{Dict, Value};
use serde::de::{DeserializeSeed, MapAccess, Visitor};

use crate::TargetConfig;

/// The file's sections, and its targets when it has `collector.targets`.
pub(crate) struct FileData {
    pub(crate) dict: Dict,
    pub(crate) targets: Option<Vec<Arc<TargetConfig>>>,
}

/// Parses `text`, the configuration file's. The error names the key, or the
/// line and column where the YAML itself is wrong.
pub(crate) fn parse(text: &str) -> Result<FileData, String> {
    let mut targets = None;
    let mut failed_at = None;
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde::Deserializer::deserialize_any(
            de,
            Top {
                targets: &mut targets,
                failed_at: &mut failed_at,
            },
        )
    });
    match parsed {
        Ok(dict) => Ok(FileData { dict, targets }),
        Err(e) => {
            // serde-saphyr's words are for programmers; say it for operators.
            let message = e.to_string().replace(
                "multiple YAML documents detected; use from_str_multiple or from_str_multiple_with_options",
                "the file holds more than one YAML document (a second `---`); the configuration is one document",
            );
            // The targets' own problems name their keys already.
            Err(match failed_at {
                Some(key) if !message.starts_with("`collector.targets") => format!("`{key}`: {message}"),
                _ => message,
            })
        }
    }
}

/// The YAML of serde_yaml 0.9 (which the file was read with before): YAML
/// 1.2's booleans only (`yes` is a string, and no boolean), `0755` and
/// `1_000` strings where the key's type is not a number, a duplicate key an
/// error. The budget admits a million targets and still stops alias bombs
/// (serde-saphyr's alias limits stay at their defaults).
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_events: 100_000_000,
            max_nodes: 50_000_000,
            max_total_scalar_bytes: 1 << 30,
        },
    }
}

/// The top level: sections as figment values, `collector` through [`Collector`].
struct Top<'a> {
    targets: &'a mut Option<Vec<Arc<TargetConfig>>>,
    failed_at: &'a mut Option<String>,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Dict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of configuration sections (`collector:`, `gateway:`, …)")
    }

    /// An empty document (or one of comments only) configures nothing.
    fn visit_unit<E: serde::de::Error>(self) -> Result<Dict, E> {
        Ok(Dict::new())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Dict, E> {
        Ok(Dict::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dict, A::Error> {
        let mut dict = Dict::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = if key == "collector" {
                map.next_value_seed(Collector {
                    targets: &mut *self.targets,
                    failed_at: &mut *self.failed_at,
                })?
            } else {
                map.next_value::<Value>()?
            };
            dict.insert(key, value);
        }
        Ok(dict)
    }
}

/// The `collector` section: its keys as figment values but `targets`,
/// parsed as read.
struct Collector<'a> {
    targets: &'a mut Option<Vec<Arc<TargetConfig>>>,
    failed_at: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Collector<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Collector<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the collector section, a mapping (`targets:`, `interval:`, …)")
    }

    /// `collector:` with nothing after it: the defaults.
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::from(Dict::new()))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::from(Dict::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut dict = Dict::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "targets" {
                *self.targets = Some(map.next_value_seed(Targets {
                    failed_at: &mut *self.failed_at,
                })?);
            } else {
                let value = map.next_value::<Value>()?;
                dict.insert(key, value);
            }
        }
        Ok(Value::from(dict))
    }
}

/// `collector.targets`, each target parsed as read. When a wrong type
/// inside a target stops it, `failed_at` is its key
/// (`collector.targets[3].interval`), for the message.
struct Targets<'a> {
    failed_at: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Targets<'_> {
    type Value = Vec<Arc<TargetConfig>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(d, &mut track);
        crate::target::deserialize_targets(tracked).inspect_err(|_| {
            let path = track.path().to_string();
            *self.failed_at = Some(if path == "." {
                "collector.targets".to_owned()
            } else {
                format!("collector.targets{path}")
            });
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, LoadOptions};

    fn load_with(text: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        Config::load(&LoadOptions {
            file: Some(f.path().to_owned()),
            env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        })
        .map_err(|e| e.to_string())
    }

    fn load(text: &str) -> Result<Config, String> {
        load_with(text, &[])
    }

    const TCP: &str = "{id: a, type: tcp, address: '127.0.0.1:1'}";

    #[test]
    fn sections_and_targets_are_both_read() {
        let c = load(&format!(
            "instance: {{name: jkt-1}}\ncollector:\n  interval: 70s\n  targets: [{TCP}]\n  workers: {{concurrency: 9}}\n"
        ))
        .unwrap();
        assert_eq!(c.instance.name, "jkt-1");
        assert_eq!(c.collector.interval, std::time::Duration::from_secs(70));
        assert_eq!(c.collector.workers.concurrency, 9);
        assert_eq!(c.collector.targets.len(), 1);
        assert_eq!(c.collector.targets[0].id, "a");
    }

    /// Comments only, `collector:` with nothing after it, an empty mapping:
    /// the defaults, as before.
    #[test]
    fn an_empty_file_or_section_is_the_defaults() {
        for text in ["# nothing yet\n", "collector:\n", "{}\n", "collector: {}\n", "---\n"] {
            let c = load(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(c.collector.targets.is_empty(), "{text:?}");
        }
    }

    /// The environment's targets win over the file's, as any key of the
    /// environment does; other keys of the environment leave the file's targets.
    #[test]
    fn the_environment_overrides_the_files_targets_only_when_it_gives_them() {
        let text = format!("collector:\n  targets: [{TCP}]\n");
        let c = load_with(&text, &[("PANTAU_COLLECTOR__INTERVAL", "90s")]).unwrap();
        assert_eq!(c.collector.targets[0].id, "a");
        let c = load_with(
            &text,
            &[(
                "PANTAU_COLLECTOR__TARGETS",
                r#"[{id="b", type="tcp", address="127.0.0.1:2"}]"#,
            )],
        )
        .unwrap();
        assert_eq!(c.collector.targets.len(), 1);
        assert_eq!(c.collector.targets[0].id, "b");
    }

    /// serde_yaml's YAML, which files were written for: `yes` is no boolean,
    /// a duplicate key is refused, and each error says where.
    #[test]
    fn hostile_yaml_is_refused_naming_the_key_or_the_place() {
        for (text, want) in [
            (
                "collector:\n  targets:\n    - {id: a, type: http, url: 'http://h/', follow_redirects: yes}\n"
                    .to_owned(),
                "`collector.targets[0].follow_redirects`",
            ),
            (
                "collector:\n  circuit_breaker:\n    enabled: yes\n".to_owned(),
                "collector.circuit_breaker.enabled",
            ),
            (
                "collector:\n  circuit_breaker:\n    enabled: on\n".to_owned(),
                "collector.circuit_breaker.enabled",
            ),
            (
                "collector:\n  targets:\n    - {id: a, type: http, url: 'http://h/', verify_tls: off}\n".to_owned(),
                "`collector.targets[0].verify_tls`",
            ),
            ("instance: {name: a}\ninstance: {name: b}\n".to_owned(), "duplicate"),
            (
                format!("collector:\n  targets: [{TCP}]\n  targets: [{TCP}]\n"),
                "duplicate",
            ),
            ("collector: [1, 2]\n".to_owned(), "the collector section"),
            ("- a\n- b\n".to_owned(), "a mapping of configuration sections"),
            ("collector:\n  interval: 10s\n bad indent: 1\n".to_owned(), "line 3"),
            ("collector: {targets: [\n".to_owned(), "line"),
            ("\u{0}\u{1}\u{2}garbage: [".to_owned(), "line 1"),
            ("collector:\n  targets: 7\n".to_owned(), "a list of targets"),
            (
                "collector:\n  targets:\n    - {id: a, type: tcp, address: 'h:1', interval: [1, 2]}\n".to_owned(),
                "`collector.targets[0].interval`",
            ),
            (
                "collector:\n  targets:\n    - {id: a, type: smoke-signal}\n".to_owned(),
                "`collector.targets[0].type`",
            ),
        ] {
            let e = load(&text).expect_err(&text);
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.len() < 2_000, "{text:?}: {e}");
        }
    }

    /// Anchors, aliases and merge keys (`<<: *web`) work in targets, so many
    /// alike targets need not repeat themselves.
    #[test]
    fn targets_may_share_their_settings_through_merge_keys() {
        let c = load(
            "collector:\n  targets:\n    - &web {id: a, type: http, url: 'http://127.0.0.1:1/', interval: 30s, labels: {team: web}}\n    - <<: *web\n      id: b\n      url: 'http://127.0.0.1:2/'\n",
        )
        .unwrap();
        let b = &c.collector.targets[1];
        assert_eq!(b.id, "b");
        assert_eq!(
            b.interval.map(crate::types::Interval::get),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(b.labels.get("team").map(String::as_str), Some("web"));
    }

    #[test]
    fn a_second_document_is_refused_in_words_an_operator_reads() {
        let e = load("instance: {name: a}\n---\ninstance: {name: b}\n").unwrap_err();
        assert!(e.contains("more than one YAML document") && e.contains("line 3"), "{e}");
    }

    /// A billion laughs stops at the alias limits, at once, naming them.
    #[test]
    fn an_alias_bomb_is_refused() {
        use std::fmt::Write as _;
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            let refs = vec![format!("*a{prev}"); 10].join(", ");
            writeln!(text, "a{i}: &a{i} [{refs}]").unwrap();
        }
        let started = std::time::Instant::now();
        let e = load(&text).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{e}");
        assert!(e.contains("alias") || e.contains("budget"), "{e}");
    }

    /// A huge value is quoted only in part.
    #[test]
    fn a_huge_value_is_quoted_in_part() {
        let e = load(&format!("collector:\n  interval: '{}'\n", "9".repeat(300_000))).unwrap_err();
        assert!(e.contains("collector.interval"), "{e}");
        assert!(e.len() < 2_000, "{}", e.len());
        let e = load(&format!("{}: [\n", "k".repeat(300_000))).unwrap_err();
        assert!(e.len() < 2_000, "{}", e.len());
    }
}
