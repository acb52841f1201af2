//! Host metrics of the machine the collector runs on, read from the OS every
//! `metrics.collection_interval` (`METRICS_COLLECTION_INTERVAL`) when
//! `metrics.enabled`: CPU, memory, disk per mount, network per interface,
//! load average, uptime and process count, and `storage_usage{volume}`: how
//! full the volume holding Pantau's `data_dir` is. Exposed on `/metrics`
//! (`pantau_host_*`) and, with `metrics.broadcast`, published on the bus as
//! `MetricSample`s (`pantau.metric.<name>`, e.g. `cpu_usage`, `disk_usage`)
//! for rules and dashboards.

use std::collections::BTreeMap;
use std::time::SystemTime;

use pantau_core::bus::{self, subject};
use pantau_core::service::Context;
use pantau_proto::v1::MetricSample;
use sysinfo::{Disks, Networks, ProcessesToUpdate, System};

/// One reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

fn sample(name: &'static str, value: f64, labels: &[(&str, String)]) -> Sample {
    Sample {
        name,
        value,
        labels: labels.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
    }
}

/// What the OS is asked each time; kept between readings so CPU usage is a
/// rate over the interval.
pub struct Reader {
    system: System,
    disks: Disks,
    networks: Networks,
    /// Pantau's data directory (absolute), whose volume is `storage_usage`.
    data_dir: Option<std::path::PathBuf>,
}

impl Reader {
    pub fn new() -> Result<Self, sysinfo::Error> {
        let mut system = System::new()?;
        system.refresh_cpu_usage();
        Ok(Self {
            system,
            disks: Disks::new_with_refreshed_list()?,
            networks: Networks::new_with_refreshed_list()?,
            data_dir: None,
        })
    }

    /// Also reads how full the volume holding `dir` is (`storage_usage`).
    #[must_use]
    pub fn with_data_dir(mut self, dir: &std::path::Path) -> Self {
        let abs = std::fs::canonicalize(dir)
            .or_else(|_| std::env::current_dir().map(|c| c.join(dir)))
            .unwrap_or_else(|_| dir.to_owned());
        self.data_dir = Some(abs);
        self
    }

    /// Reads everything now.
    pub fn read(&mut self) -> Vec<Sample> {
        let s = &mut self.system;
        s.refresh_cpu_usage();
        s.refresh_memory();
        s.refresh_processes(ProcessesToUpdate::All, true);
        self.disks.refresh(true);
        self.networks.refresh(true);
        let mut out = vec![sample("cpu_usage", f64::from(s.global_cpu_usage()), &[])];
        let total = s.total_memory() as f64;
        let used = s.used_memory() as f64;
        out.push(sample("memory_total_bytes", total, &[]));
        out.push(sample("memory_used_bytes", used, &[]));
        if total > 0.0 {
            out.push(sample("memory_usage", used * 100.0 / total, &[]));
        }
        for d in &self.disks {
            let total = d.total_space() as f64;
            if total <= 0.0 {
                continue;
            }
            let used = total - d.available_space() as f64;
            let mount = d.mount_point().display().to_string();
            out.push(sample("disk_total_bytes", total, &[("mount", mount.clone())]));
            out.push(sample("disk_used_bytes", used, &[("mount", mount.clone())]));
            out.push(sample("disk_usage", used * 100.0 / total, &[("mount", mount)]));
        }
        // The volume of the data directory: the mount point that is its
        // longest prefix.
        if let Some(dir) = &self.data_dir
            && let Some(d) = self
                .disks
                .iter()
                .filter(|d| d.total_space() > 0 && dir.starts_with(d.mount_point()))
                .max_by_key(|d| d.mount_point().as_os_str().len())
        {
            let total = d.total_space() as f64;
            let used = total - d.available_space() as f64;
            let volume = d.mount_point().display().to_string();
            out.push(sample("storage_usage", used * 100.0 / total, &[("volume", volume)]));
        }
        for (name, data) in &self.networks {
            let iface = name.to_string_lossy().into_owned();
            out.push(sample(
                "network_receive_bytes_total",
                data.total_received() as f64,
                &[("interface", iface.clone())],
            ));
            out.push(sample(
                "network_transmit_bytes_total",
                data.total_transmitted() as f64,
                &[("interface", iface)],
            ));
        }
        if let Ok(l) = System::load_average() {
            out.push(sample("load_average_1m", l.one, &[]));
            out.push(sample("load_average_5m", l.five, &[]));
            out.push(sample("load_average_15m", l.fifteen, &[]));
        }
        if let Ok(u) = System::uptime() {
            out.push(sample("uptime_seconds", u as f64, &[]));
        }
        out.push(sample("process_count", s.processes().len() as f64, &[]));
        out
    }
}

/// Starts the reader loop on `ctx.tasks` when `metrics.enabled`.
pub fn start(ctx: &Context) {
    let cfg = ctx.config.metrics.clone();
    if !cfg.enabled {
        tracing::info!("host metrics are off (metrics.enabled: false)");
        return;
    }
    let bus = std::sync::Arc::clone(&ctx.bus);
    let host = ctx.config.instance.name.clone();
    let stop = ctx.shutdown.clone();
    let data_dir = ctx.config.data_dir.clone();
    ctx.spawn_supervised("host-metrics", move || {
        read_loop(
            cfg.clone(),
            std::sync::Arc::clone(&bus),
            host.clone(),
            data_dir.clone(),
            stop.clone(),
        )
    });
}

/// Reads and exports host metrics every `collection_interval` until `stop`;
/// on a system it cannot read, waits for `stop` (host metrics are off).
async fn read_loop(
    cfg: pantau_config::MetricsConfig,
    bus: std::sync::Arc<dyn pantau_core::bus::Bus>,
    host: String,
    data_dir: std::path::PathBuf,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), String> {
    let data_dir = data_dir.clone();
    let mut reader = match tokio::task::spawn_blocking(move || Reader::new().map(|r| r.with_data_dir(&data_dir))).await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read host metrics on this system; they are off");
            stop.cancelled().await;
            return Ok(());
        }
        Err(e) => return Err(format!("the host metrics reader failed to start: {e}")),
    };
    let mut tick = tokio::time::interval(cfg.collection_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let (r, samples) = tokio::task::spawn_blocking(move || {
            let s = reader.read();
            (reader, s)
        })
        .await
        .map_err(|e| format!("the host metrics reader failed: {e}"))?;
        reader = r;
        let now = pantau_core::time::to_timestamp(SystemTime::now());
        for s in samples {
            export(&s);
            if cfg.broadcast {
                let mut labels = s.labels.clone();
                labels.insert("host".to_owned(), host.clone());
                let msg = MetricSample {
                    name: s.name.to_owned(),
                    value: s.value,
                    labels: labels.into_iter().collect(),
                    observed_at: Some(now),
                    source: host.clone(),
                };
                if let Err(e) = bus::publish_proto(bus.as_ref(), &subject::metric(s.name), &msg).await {
                    tracing::debug!(error = %e, metric = s.name, "cannot publish a host metric");
                }
            }
        }
    }
}

/// Sets the Prometheus gauge of a sample (`pantau_host_<name>`).
fn export(s: &Sample) {
    let labels: Vec<(String, String)> = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    metrics::gauge!(format!("pantau_host_{}", s.name), &labels).set(s.value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_real() {
        let data = tempfile::tempdir().unwrap();
        let mut r = Reader::new().unwrap().with_data_dir(data.path());
        std::thread::sleep(std::time::Duration::from_millis(200));
        let s = r.read();
        let get = |n: &str| s.iter().find(|x| x.name == n).map(|x| x.value);
        let total = get("memory_total_bytes").unwrap();
        // The kernel's own figure.
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kb: f64 = meminfo
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert!((total - kb * 1024.0).abs() / total < 0.01, "{total} vs {kb} kB");
        assert!(get("process_count").unwrap() >= 1.0);
        assert!(get("uptime_seconds").unwrap() > 0.0);
        let cpu = get("cpu_usage").unwrap();
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
        assert!(
            s.iter()
                .any(|x| x.name == "disk_usage" && x.labels.get("mount").is_some_and(|m| m == "/")),
            "{s:?}"
        );
        assert!(
            s.iter()
                .any(|x| x.name == "network_receive_bytes_total" && x.labels["interface"] == "lo")
        );
        // The volume of the data directory, for the storage-capacity rules.
        let storage = s.iter().find(|x| x.name == "storage_usage").expect("storage_usage");
        assert!((0.0..=100.0).contains(&storage.value), "{storage:?}");
        assert!(
            data.path()
                .canonicalize()
                .unwrap()
                .starts_with(&storage.labels["volume"]),
            "{storage:?}"
        );
    }
}
