//! Gauges written at scrape time from a service's own state.
//!
//! A series registered with the `metrics` recorder costs about 200 bytes
//! (its key, its labels, its value's allocation and the registry's slot).
//! For one series per target that is 20 MiB at a hundred thousand targets,
//! a second copy of what the service already holds. A [`Scraped`] family
//! instead asks its sources, at every `/metrics`, to write their samples
//! from the state they keep anyway.

use std::fmt::Write as _;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, PoisonError, Weak};

/// Something that writes the samples of one gauge family at scrape time.
pub trait GaugeSource: Send + Sync {
    /// Appends its samples, one [`Sample`] each.
    fn samples(&self, out: &mut Samples<'_>);
}

/// A gauge family whose samples come from its sources at every scrape.
struct Family {
    name: &'static str,
    help: &'static str,
    sources: Vec<Weak<dyn GaugeSource>>,
}

static FAMILIES: Mutex<Vec<Family>> = Mutex::new(Vec::new());

/// Adds `source` to the gauge family `name` (described by `help`); it is
/// dropped from it once nothing else holds it.
pub fn add_gauge_source(name: &'static str, help: &'static str, source: Weak<dyn GaugeSource>) {
    let mut families = FAMILIES.lock().unwrap_or_else(PoisonError::into_inner);
    match families.iter_mut().find(|f| f.name == name) {
        Some(f) => f.sources.push(source),
        None => families.push(Family {
            name,
            help,
            sources: vec![source],
        }),
    }
}

/// Where a source writes: one line per sample, in the exposition format.
pub struct Samples<'a> {
    name: &'static str,
    out: &'a mut String,
}

impl Samples<'_> {
    /// `name{label="value",…} value`; label values escaped as the text
    /// format wants (`\\`, `\"`, `\n`).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape(v, self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

fn escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends every family that has at least one sample, with its `# HELP`
/// and `# TYPE` lines; sources gone are forgotten. Samples are written
/// straight into `out`, which is first grown to the size these families
/// took at the last scrape: at a hundred thousand targets the text is
/// about 6 MB, and a separate body per family plus `out` doubling as it
/// grew held three copies of it at once.
pub(super) fn render(out: &mut String) {
    static LAST: AtomicUsize = AtomicUsize::new(0);
    let start = out.len();
    out.reserve(LAST.load(Relaxed));
    let mut families = FAMILIES.lock().unwrap_or_else(PoisonError::into_inner);
    for f in families.iter_mut() {
        f.sources.retain(|s| s.strong_count() > 0);
        let before = out.len();
        if before > 0 && !out.ends_with("\n\n") {
            out.push('\n');
        }
        let _ = write!(out, "# HELP {} {}\n# TYPE {} gauge\n", f.name, f.help, f.name);
        let header = out.len();
        for s in f.sources.iter().filter_map(Weak::upgrade) {
            s.samples(&mut Samples { name: f.name, out });
        }
        if out.len() == header {
            out.truncate(before);
        }
    }
    LAST.store(out.len() - start, Relaxed);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    struct Two;

    impl GaugeSource for Two {
        fn samples(&self, out: &mut Samples<'_>) {
            out.sample(&[("target", "a"), ("kind", "http")], 1.0);
            out.sample(&[("target", "quote\"back\\slash\nline")], 0.0);
        }
    }

    #[test]
    fn a_family_is_rendered_while_its_source_lives_and_values_are_escaped() {
        let source: Arc<dyn GaugeSource> = Arc::new(Two);
        add_gauge_source("test_scraped_up", "1 when up", Arc::downgrade(&source));
        let mut out = "other_metric 3\n".to_owned();
        render(&mut out);
        assert!(
            out.contains(concat!(
                "other_metric 3\n\n# HELP test_scraped_up 1 when up\n# TYPE test_scraped_up gauge\n",
                "test_scraped_up{target=\"a\",kind=\"http\"} 1\n",
                "test_scraped_up{target=\"quote\\\"back\\\\slash\\nline\"} 0\n",
            )),
            "{out}"
        );
        drop(source);
        let mut out = String::new();
        render(&mut out);
        assert!(!out.contains("test_scraped_up"), "{out}");
    }

    struct Silent;

    impl GaugeSource for Silent {
        fn samples(&self, _: &mut Samples<'_>) {}
    }

    #[test]
    fn a_family_without_samples_writes_nothing_not_even_its_header() {
        let source: Arc<dyn GaugeSource> = Arc::new(Silent);
        add_gauge_source("test_scraped_silent", "never sampled", Arc::downgrade(&source));
        let mut out = "other_metric 3\n".to_owned();
        render(&mut out);
        assert!(!out.contains("test_scraped_silent"), "{out}");
        assert!(out.starts_with("other_metric 3\n"), "{out}");
    }
}
