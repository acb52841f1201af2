//! jemalloc's own figures as gauges, read every few seconds: what the
//! program holds (`allocated`), the pages that holds spread over (`active`),
//! what is resident (`resident`, which includes jemalloc's metadata and the
//! dirty pages not yet returned) and the address space kept for reuse
//! (`retained`). `process_resident_memory_bytes` says how much; these say
//! whether it is the program's data or the allocator's slack.

use std::time::Duration;

use tikv_jemalloc_ctl::{epoch, stats};

/// How often the figures are read (each read refreshes jemalloc's statistics
/// epoch, a few microseconds).
const PERIOD: Duration = Duration::from_secs(5);

const GAUGES: [(&str, &str); 5] = [
    (
        "pantau_allocator_allocated_bytes",
        "Bytes the program holds in jemalloc allocations",
    ),
    (
        "pantau_allocator_active_bytes",
        "Bytes in jemalloc's active pages (allocated plus their slack)",
    ),
    (
        "pantau_allocator_resident_bytes",
        "Bytes jemalloc has resident: active pages, metadata and dirty pages not yet returned",
    ),
    ("pantau_allocator_metadata_bytes", "Bytes of jemalloc's own metadata"),
    (
        "pantau_allocator_retained_bytes",
        "Bytes of address space jemalloc keeps for reuse (not resident)",
    ),
];

/// Reads the figures every [`PERIOD`] until the runtime stops. A failure to
/// read them (not expected with jemalloc linked in) is logged once and ends
/// the reports.
pub async fn report() {
    for (name, help) in GAUGES {
        metrics::describe_gauge!(name, metrics::Unit::Bytes, help);
    }
    let mut tick = tokio::time::interval(PERIOD);
    loop {
        tick.tick().await;
        if let Err(e) = read() {
            tracing::warn!(error = %e, "cannot read jemalloc's statistics; the pantau_allocator_* gauges stop");
            return;
        }
    }
}

fn read() -> Result<(), tikv_jemalloc_ctl::Error> {
    epoch::advance()?;
    let figures = [
        stats::allocated::read()?,
        stats::active::read()?,
        stats::resident::read()?,
        stats::metadata::read()?,
        stats::retained::read()?,
    ];
    for ((name, _), bytes) in GAUGES.iter().zip(figures) {
        metrics::gauge!(*name).set(bytes as f64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_are_read_and_ordered() {
        // The test binary's global allocator is jemalloc too (main.rs).
        read().expect("jemalloc statistics");
        let allocated = stats::allocated::read().expect("allocated");
        let active = stats::active::read().expect("active");
        let resident = stats::resident::read().expect("resident");
        assert!(allocated <= active, "{allocated} > {active}");
        assert!(active <= resident, "{active} > {resident}");
    }
}
