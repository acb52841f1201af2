//! Paths, tools and the PromQL expressions of the repository's files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;

use regex::Regex;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Directories searched after `PATH` (Debian's servers live in sbin).
const EXTRA_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin"];

/// The executable `name`, or a panic naming the package that provides it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found on PATH: install the Debian package {package} (apt-get install {package}), or run make deps")
        })
}

/// `kubernetes-validate` from the venv `make deps` builds (.venv-deploy).
pub fn kubernetes_validate() -> PathBuf {
    let p = repo().join(".venv-deploy/bin/kubernetes-validate");
    assert!(
        p.is_file(),
        "{} not found: install the PyPI package kubernetes-validate with `make deps` \
         (/usr/bin/python3 -m venv .venv-deploy && .venv-deploy/bin/pip install kubernetes-validate)",
        p.display()
    );
    p
}

/// Runs `cmd`; panics with its output unless it exits 0. Returns stdout + stderr.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    text
}

/// Runs `cmd` expecting it to fail; returns its output.
pub fn run_fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{cmd:?} should have failed:\n{text}");
    text
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

pub fn yaml(rel: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

/// One PromQL expression and where it comes from.
#[derive(Debug, Clone)]
pub struct Expr {
    pub origin: String,
    pub expr: String,
}

pub const RULE_FILES: &[&str] = &["prometheus/rules/recording.yml", "prometheus/rules/alerts.yml"];

/// Every rule of the rule files: (file, name, expr, is_recording).
pub fn rules() -> Vec<(String, String, String, bool)> {
    let mut out = Vec::new();
    for file in RULE_FILES {
        let v = yaml(file);
        for g in v["groups"].as_sequence().expect("groups") {
            for r in g["rules"].as_sequence().expect("rules") {
                let expr = r["expr"].as_str().expect("expr").trim().to_owned();
                if let Some(name) = r["record"].as_str() {
                    out.push(((*file).to_owned(), name.to_owned(), expr, true));
                } else {
                    let name = r["alert"].as_str().expect("alert or record").to_owned();
                    out.push(((*file).to_owned(), name, expr, false));
                }
            }
        }
    }
    out
}

pub fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Every panel target's PromQL expression in grafana/dashboards/*.json.
pub fn panel_exprs() -> Vec<Expr> {
    let mut out = Vec::new();
    for f in dashboard_files() {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        for p in v["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().expect("targets") {
                out.push(Expr {
                    origin: format!("{} panel {:?}", f.file_name().unwrap().to_string_lossy(), p["title"]),
                    expr: t["expr"].as_str().expect("expr").to_owned(),
                });
            }
        }
    }
    out
}

/// Every expression of the rule files and the dashboards.
pub fn all_exprs() -> Vec<Expr> {
    rules()
        .into_iter()
        .map(|(file, name, expr, _)| Expr {
            origin: format!("{file} {name}"),
            expr,
        })
        .chain(panel_exprs())
        .collect()
}

static PANTAU_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(^|[^a-zA-Z0-9_:])(pantau_[a-z0-9_]+)").unwrap());
static RECORDED_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|[^a-zA-Z0-9_])([a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]*[a-zA-Z0-9_])").unwrap());

/// The `pantau_*` metric names an expression reads (histogram suffixes
/// stripped), not counting recording-rule names (`level:pantau_x:op`).
pub fn pantau_metrics(expr: &str) -> BTreeSet<String> {
    PANTAU_NAME
        .captures_iter(expr)
        .map(|c| base_name(&c[2]).to_owned())
        .collect()
}

/// Recording-rule names (`level:metric:operations`) an expression reads.
pub fn recorded_names(expr: &str) -> BTreeSet<String> {
    RECORDED_NAME.captures_iter(expr).map(|c| c[2].to_owned()).collect()
}

/// `x_bucket`, `x_sum` and `x_count` are the series of histogram `x`.
pub fn base_name(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

#[test]
fn metric_names_are_parsed_out_of_expressions() {
    let e = "histogram_quantile(0.95, sum by (kind, le) (rate(pantau_collector_check_duration_seconds_bucket[5m]))) \
             / kind_location:pantau_collector_checks:rate5m + on() pantau_host_cpu_usage";
    assert_eq!(
        pantau_metrics(e).into_iter().collect::<Vec<_>>(),
        ["pantau_collector_check_duration_seconds", "pantau_host_cpu_usage"]
    );
    assert_eq!(
        recorded_names(e).into_iter().collect::<Vec<_>>(),
        ["kind_location:pantau_collector_checks:rate5m"]
    );
    assert!(recorded_names(r#"count by (severity) (ALERTS{alertstate="firing"})"#).is_empty());
    assert!(recorded_names("max_over_time(rate(x[5m])[30m:1m])").is_empty());
}

/// A child process killed (and reaped) on drop, its stderr in a file.
pub struct Killed(Child, &'static str, std::path::PathBuf);

impl Killed {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.2).unwrap_or_default()
    }
    pub fn assert_running(&mut self) {
        if let Some(s) = self.0.try_wait().unwrap() {
            panic!("{} exited with {s}:\n{}", self.1, self.log());
        }
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` as `name`, its stderr in `dir/<name>.log`.
pub fn spawn(name: &'static str, cmd: &mut Command, dir: &Path) -> Killed {
    let log = dir.join(format!("{name}.log"));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Killed(child, name, log)
}
