//! Counter arithmetic, as pure functions: what a pair of consecutive
//! readings of one counter means (traffic, a 32-bit wrap, a reset, or
//! nothing knowable across a polling gap), and whether a router's uptime
//! going backwards is a reboot or the 497-day `sysUpTime` wrap.

use std::time::Duration;

/// Headroom over the interface speed when judging whether a 32-bit wrap is
/// plausible (agents round speeds, bursts overshoot a little).
const SPEED_HEADROOM: f64 = 1.25;
/// An elapsed time beyond this many intervals is a polling gap.
pub const GAP_FACTOR: u32 = 3;
/// Tolerance when matching an expected uptime against the one read (100 s,
/// in hundredths), for clock drift and slow polls.
const UPTIME_SLACK_CENTIS: u64 = 10_000;
/// TimeTicks (`sysUpTime`, `hrSystemUptime`) wrap at 2^32 hundredths: 497 days.
pub const TIMETICKS_WRAP: u64 = 1 << 32;

/// How wide a counter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// `Counter32` (`ifInOctets`), wraps at 2^32.
    Bits32,
    /// `Counter64` (`ifHCInOctets`).
    Bits64,
}

impl Width {
    pub fn bits(self) -> u32 {
        match self {
            Self::Bits32 => 32,
            Self::Bits64 => 64,
        }
    }

    fn modulus(self) -> u128 {
        1u128 << self.bits()
    }
}

/// What happened to a counter between two readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It grew by this much.
    Delta(u64),
    /// It went past its maximum and started again from 0; it grew by this much.
    Wrapped(u64),
    /// It went backwards by more than a wrap explains: the device reset it.
    Reset,
    /// Across a polling gap a 32-bit counter may have wrapped any number of
    /// times: no delta can be known.
    Unknown,
}

impl Step {
    /// The growth, when it is known.
    pub fn delta(self) -> Option<u64> {
        match self {
            Self::Delta(d) | Self::Wrapped(d) => Some(d),
            Self::Reset | Self::Unknown => None,
        }
    }
}

/// Most a counter of octets can plausibly grow in `elapsed` on a link of
/// `speed_bps`; `None` when the speed is unknown.
pub fn max_plausible_octets(speed_bps: u64, elapsed: Duration) -> Option<f64> {
    (speed_bps > 0).then(|| speed_bps as f64 / 8.0 * elapsed.as_secs_f64() * SPEED_HEADROOM)
}

/// Judges one octet counter from `prev` to `cur` over `elapsed` on a link of
/// `speed_bps` (0 = unknown); `gap` says the readings are a polling gap apart.
///
/// Going backwards is a wrap only if the modular delta fits what the link
/// could carry in the time (or, speed unknown, is under half the counter's
/// range), else a reset. A reset never yields a delta, so never a negative or
/// giant rate.
pub fn step(prev: u64, cur: u64, width: Width, speed_bps: u64, elapsed: Duration, gap: bool) -> Step {
    if gap && width == Width::Bits32 {
        // Up to 2^32 octets pass in 34 s at 1 Gbit/s: across a gap the count
        // of wraps is unknowable.
        return Step::Unknown;
    }
    if cur >= prev {
        return Step::Delta(cur - prev);
    }
    let modular = (width.modulus() + u128::from(cur) - u128::from(prev)) as u64;
    let plausible = match max_plausible_octets(speed_bps, elapsed) {
        Some(max) => (modular as f64) <= max,
        None => u128::from(modular) < width.modulus() / 2,
    };
    if plausible { Step::Wrapped(modular) } else { Step::Reset }
}

/// Bits per second of a delta of octets over `elapsed`.
pub fn bits_per_second(octets: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 { 0.0 } else { octets as f64 * 8.0 / secs }
}

/// Per second of a delta of anything over `elapsed`.
pub fn per_second(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 { 0.0 } else { n as f64 / secs }
}

/// Whether two readings `elapsed` apart are a polling gap for `interval`.
pub fn is_gap(elapsed: Duration, interval: Duration) -> bool {
    elapsed > interval * GAP_FACTOR
}

/// A router's uptime in hundredths of a second: the largest of `sysUpTime`,
/// `hrSystemUptime` (both TimeTicks) and `snmpEngineTime` (seconds), those
/// the agent has. `hrSystemUptime` counts since the OS booted and
/// `snmpEngineTime` since the engine started, so they outlast a `sysUpTime`
/// wrap.
pub fn uptime_centis(sys_uptime: Option<u32>, hr_uptime: Option<u32>, engine_time_secs: Option<u32>) -> Option<u64> {
    [
        sys_uptime.map(u64::from),
        hr_uptime.map(u64::from),
        engine_time_secs.map(|s| u64::from(s) * 100),
    ]
    .into_iter()
    .flatten()
    .max()
}

/// What a router's uptime did between two readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uptime {
    /// It went on.
    Continued,
    /// It went backwards, but by exactly the 2^32 TimeTicks wrap after about
    /// 497 days: not a reboot.
    Wrapped,
    /// It went backwards: the router restarted.
    Rebooted,
}

/// Judges the uptime `prev` → `cur` (hundredths) with `elapsed` wall time
/// between the readings.
pub fn uptime(prev: u64, cur: u64, elapsed: Duration) -> Uptime {
    if cur >= prev {
        return Uptime::Continued;
    }
    // Where the uptime should be now, had it not wrapped.
    let expected = prev + (elapsed.as_millis() / 10) as u64;
    if expected >= TIMETICKS_WRAP {
        let after_wrap = expected - TIMETICKS_WRAP;
        if after_wrap.abs_diff(cur) <= UPTIME_SLACK_CENTIS {
            return Uptime::Wrapped;
        }
    }
    Uptime::Rebooted
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(30);
    const GBIT: u64 = 1_000_000_000;

    #[test]
    fn growth_is_a_delta() {
        assert_eq!(step(100, 1100, Width::Bits64, GBIT, S, false), Step::Delta(1000));
        assert_eq!(step(100, 100, Width::Bits32, GBIT, S, false), Step::Delta(0));
        assert_eq!(bits_per_second(1000, Duration::from_secs(2)), 4000.0);
        assert_eq!(bits_per_second(1000, Duration::ZERO), 0.0);
    }

    #[test]
    fn a_32_bit_wrap_the_link_could_carry_is_a_wrap() {
        // 2^32 - 1000 → 2000: 3000 octets passed, plausible on any link.
        let prev = (1u64 << 32) - 1000;
        assert_eq!(step(prev, 2000, Width::Bits32, GBIT, S, false), Step::Wrapped(3000));
        // A gigabit link carries ~3.75 GB in 30 s: a 3 GB modular delta fits.
        let prev = 2_000_000_000;
        let cur = 700_000_000; // modular: 2^32 - 1.3e9 ≈ 2.99e9
        assert!(matches!(
            step(prev, cur, Width::Bits32, GBIT, S, false),
            Step::Wrapped(d) if d == (1u64 << 32) - 1_300_000_000
        ));
    }

    #[test]
    fn going_backwards_beyond_the_link_is_a_reset() {
        // 10 Mbit/s carries 37.5 MB in 30 s; the 2.99e9 modular delta cannot be.
        assert_eq!(
            step(2_000_000_000, 700_000_000, Width::Bits32, 10_000_000, S, false),
            Step::Reset
        );
        // A counter back near zero from a small value: reset.
        assert_eq!(step(5_000_000, 12, Width::Bits32, 10_000_000, S, false), Step::Reset);
        // 64-bit counters do not wrap in practice: backwards is a reset.
        assert_eq!(step(5_000_000, 12, Width::Bits64, GBIT, S, false), Step::Reset);
        assert_eq!(step(5_000_000, 12, Width::Bits64, 0, S, false), Step::Reset);
        assert_eq!(Step::Reset.delta(), None);
    }

    #[test]
    fn unknown_speed_uses_half_the_range() {
        let prev = (1u64 << 32) - 10;
        assert_eq!(step(prev, 10, Width::Bits32, 0, S, false), Step::Wrapped(20));
        assert_eq!(step(1_000_000_000, 10, Width::Bits32, 0, S, false), Step::Reset);
    }

    #[test]
    fn a_gap_makes_32_bit_deltas_unknown_but_not_64_bit() {
        let long = Duration::from_secs(600);
        assert!(is_gap(long, S));
        assert!(!is_gap(Duration::from_secs(89), S));
        assert_eq!(step(1, 5, Width::Bits32, GBIT, long, true), Step::Unknown);
        assert_eq!(step(1, 5, Width::Bits64, GBIT, long, true), Step::Delta(4));
        assert_eq!(step(5, 1, Width::Bits64, GBIT, long, true), Step::Reset);
    }

    #[test]
    fn uptime_is_the_largest_source() {
        assert_eq!(uptime_centis(Some(5), None, None), Some(5));
        assert_eq!(uptime_centis(Some(5), Some(900), Some(3)), Some(900));
        assert_eq!(uptime_centis(Some(5), None, Some(1000)), Some(100_000));
        assert_eq!(uptime_centis(None, None, None), None);
    }

    #[test]
    fn uptime_backwards_is_a_reboot_unless_it_is_the_497_day_wrap() {
        assert_eq!(uptime(1000, 4000, S), Uptime::Continued);
        // Rebooted 10 s ago.
        assert_eq!(uptime(50_000_000, 1000, S), Uptime::Rebooted);
        // 10 s before the wrap, read again 30 s later: 20 s after the wrap.
        let before = TIMETICKS_WRAP - 1000;
        assert_eq!(uptime(before, 2000, S), Uptime::Wrapped);
        // Near the wrap but back at a value the elapsed time does not explain.
        assert_eq!(uptime(before, 2_000_000, S), Uptime::Rebooted);
    }
}
