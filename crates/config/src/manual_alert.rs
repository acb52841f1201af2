//! An alert raised by hand (`POST /api/v1/monitoring/alerts`, gRPC
//! `CreateAlert`): its fields parsed once into a [`ManualAlert`], whichever
//! door it came through, refusals naming the field.

use std::collections::BTreeMap;

use crate::alert_engine::AlertSeverity;
use crate::types::quote;

/// The rule id every alert raised by hand carries; no rule may take it.
pub const MANUAL_RULE: &str = "manual";
/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest message, in characters.
pub const MAX_MESSAGE: usize = 4096;
/// Longest source, in characters.
pub const MAX_SOURCE: usize = 128;
/// Longest resource, in characters.
pub const MAX_RESOURCE: usize = 256;
/// Most labels.
pub const MAX_LABELS: usize = 32;
/// Longest label value, in characters.
pub const MAX_LABEL_VALUE: usize = 256;

/// An alert raised by hand, every field within its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualAlert {
    pub severity: AlertSeverity,
    /// What raised it; [`MANUAL_RULE`] when not given.
    pub source: String,
    /// One line, not blank.
    pub title: String,
    /// Details; may hold new lines and tabs.
    pub message: String,
    /// What it is about; may be empty.
    pub resource: String,
    pub labels: BTreeMap<String, String>,
}

/// The fields as they arrive, unchecked.
#[derive(Debug, Clone, Default)]
pub struct RawManualAlert {
    /// `info`, `warning` or `critical`; `None` when absent.
    pub severity: Option<String>,
    pub source: String,
    pub title: String,
    pub message: String,
    pub resource: String,
    pub labels: BTreeMap<String, String>,
}

/// Why a field of an alert raised by hand is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {reason}")]
pub struct ManualAlertError {
    /// The field: `title`, `labels.team`.
    pub field: String,
    pub reason: String,
}

fn refuse(field: impl Into<String>, reason: impl Into<String>) -> ManualAlertError {
    ManualAlertError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks one line of text: at most `max` characters, no control
/// characters (new lines and tabs too, unless `multiline`).
fn text(field: &str, v: &str, max: usize, multiline: bool) -> Result<(), ManualAlertError> {
    let n = v.chars().count();
    if n > max {
        return Err(refuse(
            field,
            format!("is {n} characters long; at most {max} are allowed"),
        ));
    }
    if let Some(c) = v
        .chars()
        .find(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r')))
    {
        return Err(refuse(
            field,
            format!(
                "holds the control character U+{:04X}; {}",
                u32::from(c),
                if multiline {
                    "only new lines and tabs are allowed"
                } else {
                    "use one line of text"
                }
            ),
        ));
    }
    Ok(())
}

fn is_label_name(l: &str) -> bool {
    (1..=64).contains(&l.len())
        && l.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl AlertSeverity {
    /// `info`, `warning` or `critical`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Self::Info,
            "warning" => Self::Warning,
            "critical" => Self::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl RawManualAlert {
    /// Checks every field; the first fault, naming its field.
    pub fn parse(self) -> Result<ManualAlert, ManualAlertError> {
        let severity = match self.severity.as_deref() {
            None => return Err(refuse("severity", "is required: info, warning or critical")),
            Some(s) => AlertSeverity::parse(s).ok_or_else(|| {
                refuse(
                    "severity",
                    format!("`{}` is not a severity: use info, warning or critical", quote(s)),
                )
            })?,
        };
        if self.title.trim().is_empty() {
            return Err(refuse("title", "is required: one line saying what is wrong"));
        }
        text("title", &self.title, MAX_TITLE, false)?;
        text("message", &self.message, MAX_MESSAGE, true)?;
        text("source", &self.source, MAX_SOURCE, false)?;
        text("resource", &self.resource, MAX_RESOURCE, false)?;
        if self.labels.len() > MAX_LABELS {
            return Err(refuse(
                "labels",
                format!("has {} labels; at most {MAX_LABELS} are allowed", self.labels.len()),
            ));
        }
        for (k, v) in &self.labels {
            if !is_label_name(k) {
                return Err(refuse(
                    format!("labels.{}", quote(k)),
                    "is not a label name: 1–64 letters, digits or `_`, not starting with a digit",
                ));
            }
            text(&format!("labels.{k}"), v, MAX_LABEL_VALUE, false)?;
        }
        let source = if self.source.trim().is_empty() {
            MANUAL_RULE.to_owned()
        } else {
            self.source.trim().to_owned()
        };
        Ok(ManualAlert {
            severity,
            source,
            title: self.title.trim().to_owned(),
            message: self.message,
            resource: self.resource.trim().to_owned(),
            labels: self.labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> RawManualAlert {
        RawManualAlert {
            severity: Some("critical".into()),
            source: "backup-job".into(),
            title: "Nightly backup failed".into(),
            message: "tar exited 2\nsee the log".into(),
            resource: "db-1".into(),
            labels: [("team".to_owned(), "ops".to_owned())].into(),
        }
    }

    fn field(r: RawManualAlert) -> String {
        r.parse().unwrap_err().field
    }

    #[test]
    fn a_valid_alert_parses_and_an_empty_source_is_manual() {
        let a = ok().parse().unwrap();
        assert_eq!((a.severity, a.source.as_str()), (AlertSeverity::Critical, "backup-job"));
        let a = RawManualAlert {
            source: "  ".into(),
            ..ok()
        }
        .parse()
        .unwrap();
        assert_eq!(a.source, MANUAL_RULE);
    }

    #[test]
    fn severity_is_required_and_from_its_enum() {
        assert_eq!(field(RawManualAlert { severity: None, ..ok() }), "severity");
        for s in ["", "fatal", "CRITICAL", "critical ", "\u{0}"] {
            let e = RawManualAlert {
                severity: Some(s.into()),
                ..ok()
            }
            .parse()
            .unwrap_err();
            assert_eq!(e.field, "severity", "{s:?}");
            assert!(e.to_string().contains("info, warning or critical"), "{e}");
        }
    }

    #[test]
    fn title_is_required_one_line_and_bounded() {
        for t in ["", "   ", "a\nb", "bell\u{7}", &"x".repeat(MAX_TITLE + 1)] {
            assert_eq!(
                field(RawManualAlert {
                    title: t.into(),
                    ..ok()
                }),
                "title",
                "{t:?}"
            );
        }
        let a = RawManualAlert {
            title: "é".repeat(MAX_TITLE),
            ..ok()
        };
        assert!(a.parse().is_ok(), "characters are counted, not bytes");
    }

    #[test]
    fn message_keeps_new_lines_but_refuses_other_controls_and_huge_text() {
        assert_eq!(
            field(RawManualAlert {
                message: "esc \u{1b}[31m".into(),
                ..ok()
            }),
            "message"
        );
        let e = RawManualAlert {
            message: "m".repeat(1 << 20),
            ..ok()
        }
        .parse()
        .unwrap_err();
        assert_eq!(e.field, "message");
        assert!(e.reason.contains("at most 4096"), "{e}");
    }

    #[test]
    fn source_resource_and_labels_are_bounded() {
        assert_eq!(
            field(RawManualAlert {
                source: "a\u{0}".into(),
                ..ok()
            }),
            "source"
        );
        assert_eq!(
            field(RawManualAlert {
                resource: "r".repeat(MAX_RESOURCE + 1),
                ..ok()
            }),
            "resource"
        );
        for bad in ["", "1x", "a-b", "a b", &"l".repeat(65)] {
            let e = RawManualAlert {
                labels: [(bad.to_owned(), "v".to_owned())].into(),
                ..ok()
            }
            .parse()
            .unwrap_err();
            assert!(e.field.starts_with("labels."), "{bad:?}: {e}");
        }
        assert_eq!(
            field(RawManualAlert {
                labels: [("team".to_owned(), "a\nb".to_owned())].into(),
                ..ok()
            }),
            "labels.team"
        );
        let many = (0..=MAX_LABELS).map(|i| (format!("l{i}"), "v".to_owned())).collect();
        assert_eq!(field(RawManualAlert { labels: many, ..ok() }), "labels");
    }
}
