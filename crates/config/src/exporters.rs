//! `exporters`: optional exports of Pantau's facts to other monitoring
//! systems. Today DataDog: check results as metrics (`POST /api/v2/series`)
//! and alert transitions as events (`POST /api/v1/events`). The API key is
//! never in the configuration: it is read from an environment variable or a
//! file (a mounted secret) when the exporter starts.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration;
use crate::types::HttpUrl;

/// Every exporter; each is off unless configured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportersConfig {
    /// DataDog: check results as v2 series, alert transitions as events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogConfig>,
}

/// DataDog's sites (`site` selects `https://api.<site>`).
pub const DATADOG_SITES: [&str; 9] = [
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "uk1.datadoghq.com",
    "ddog-gov.com",
    "us2.ddog-gov.com",
];

/// `exporters.datadog`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatadogConfig {
    /// The DataDog site: one of [`DATADOG_SITES`] (default `datadoghq.com`).
    #[serde(default = "default_site")]
    pub site: String,
    /// Sends to this base URL instead of `https://api.<site>` (a proxy, or a
    /// test sink).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<HttpUrl>,
    /// The environment variable holding the API key (e.g. `DD_API_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// A file holding the API key (e.g. a mounted Kubernetes secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// How often a batch is sent (1s to 5m; default 10s).
    #[serde(default = "default_interval", with = "duration")]
    pub interval: Duration,
    /// Most results and events waiting to be sent (1 to 100,000; default
    /// 10,000); beyond, the newest are dropped and counted.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Tags added to every series and event (`env:prod`).
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_site() -> String {
    DATADOG_SITES[0].to_owned()
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_queue() -> usize {
    10_000
}

impl DatadogConfig {
    /// The intake's base URL, without a trailing `/`.
    pub fn base_url(&self) -> String {
        match &self.url {
            Some(u) => u.as_str().trim_end_matches('/').to_owned(),
            None => format!("https://api.{}", self.site),
        }
    }

    /// What is wrong, as `(key, value, allowed)`, keys under `exporters.datadog`.
    pub fn problems(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut add = |k: &str, v: String, allowed: &str| {
            out.push((format!("exporters.datadog.{k}"), v, allowed.to_owned()));
        };
        if !DATADOG_SITES.contains(&self.site.as_str()) {
            add(
                "site",
                crate::types::quote(&self.site).into_owned(),
                &format!("must be one of {}", DATADOG_SITES.join(", ")),
            );
        }
        match (&self.api_key_env, &self.api_key_file) {
            (Some(_), Some(_)) | (None, None) => add(
                "api_key_env",
                String::new(),
                "set exactly one of api_key_env (an environment variable's name) and api_key_file",
            ),
            (Some(name), None) => {
                let ok = (1..=128).contains(&name.len())
                    && name.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                if !ok {
                    add(
                        "api_key_env",
                        crate::types::quote(name).into_owned(),
                        "must be an environment variable's name: upper-case letters, digits and `_`",
                    );
                }
            }
            (None, Some(_)) => {}
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&self.interval) {
            add(
                "interval",
                humantime::format_duration(self.interval).to_string(),
                "must be between 1s and 5m",
            );
        }
        if !(1..=100_000).contains(&self.queue) {
            add("queue", self.queue.to_string(), "must be between 1 and 100000");
        }
        if self.tags.len() > 32 {
            add("tags", self.tags.len().to_string(), "at most 32 tags");
        }
        for (i, t) in self.tags.iter().enumerate() {
            let ok = (1..=200).contains(&t.len())
                && t.starts_with(|c: char| c.is_ascii_alphabetic())
                && t.chars().all(|c| c.is_ascii_alphanumeric() || "_-:./".contains(c));
            if !ok {
                add(
                    &format!("tags[{i}]"),
                    crate::types::quote(t).into_owned(),
                    "must be a DataDog tag: 1–200 letters, digits, `_-:./`, starting with a letter",
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn keys(yaml: &str) -> Vec<String> {
        let c: Config = serde_yaml::from_str(yaml).unwrap();
        c.exporters
            .datadog
            .unwrap()
            .problems()
            .into_iter()
            .map(|p| p.0)
            .collect()
    }

    #[test]
    fn a_minimal_datadog_exporter_parses_with_defaults() {
        let c: Config = serde_yaml::from_str("exporters:\n  datadog:\n    api_key_env: DD_API_KEY\n").unwrap();
        let d = c.exporters.datadog.unwrap();
        assert_eq!(
            (d.site.as_str(), d.interval, d.queue),
            ("datadoghq.com", Duration::from_secs(10), 10_000)
        );
        assert_eq!(d.base_url(), "https://api.datadoghq.com");
        assert!(d.problems().is_empty());
        assert!(Config::default().exporters.datadog.is_none(), "off unless configured");
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            keys("exporters:\n  datadog:\n    site: datadog.com\n    api_key_env: K\n"),
            ["exporters.datadog.site"]
        );
        assert_eq!(keys("exporters:\n  datadog: {}\n"), ["exporters.datadog.api_key_env"]);
        assert_eq!(
            keys("exporters:\n  datadog:\n    api_key_env: K\n    api_key_file: /k\n"),
            ["exporters.datadog.api_key_env"]
        );
        assert_eq!(
            keys("exporters:\n  datadog:\n    api_key_env: 'dd key'\n"),
            ["exporters.datadog.api_key_env"]
        );
        assert_eq!(
            keys(
                "exporters:\n  datadog:\n    api_key_env: K\n    interval: 1h\n    queue: 0\n    tags: ['env:prod', 'bad tag']\n"
            ),
            [
                "exporters.datadog.interval",
                "exporters.datadog.queue",
                "exporters.datadog.tags[1]"
            ]
        );
    }

    #[test]
    fn a_proxy_password_is_masked_and_no_key_is_in_the_configuration() {
        let c: Config = serde_yaml::from_str(
            "exporters:\n  datadog:\n    api_key_env: DD_API_KEY\n    url: https://u:hunter2@proxy:3834\n",
        )
        .unwrap();
        let printed = serde_yaml::to_string(&c.masked()).unwrap();
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("DD_API_KEY"), "the variable's name, not its value");
    }

    #[test]
    fn wrong_types_and_unknown_keys_are_refused() {
        for yaml in [
            "exporters:\n  datadog:\n    api_key: secret\n",
            "exporters:\n  datadog:\n    api_key_env: K\n    interval: soon\n",
            "exporters:\n  datadog:\n    api_key_env: K\n    queue: -1\n",
            "exporters:\n  datadog:\n    api_key_env: K\n    url: ftp://x\n",
            "exporters:\n  statsd: {}\n",
        ] {
            assert!(serde_yaml::from_str::<Config>(yaml).is_err(), "{yaml}");
        }
    }
}
