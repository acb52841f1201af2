use super::changes::constant_time_eq;
use super::*;
use crate::spread::MAX_FIRST_DELAY;

#[test]
fn messages_are_cut_at_a_character_boundary() {
    assert_eq!(bounded("short"), "short");
    let long = "é".repeat(MAX_MESSAGE + 10);
    let cut = bounded(&long);
    assert_eq!(cut.chars().count(), MAX_MESSAGE + 1, "the limit plus the ellipsis");
    assert!(cut.ends_with('…'));
}

#[test]
fn first_delays_are_spread_and_bounded() {
    let w = spread_window(200);
    assert_eq!(w, MAX_FIRST_DELAY);
    let delays: Vec<Duration> = (0..200)
        .map(|i| first_delay(&format!("t{i}"), Duration::from_secs(30), w))
        .collect();
    assert!(delays.iter().all(|d| *d < MAX_FIRST_DELAY));
    let distinct: std::collections::HashSet<_> = delays.iter().map(Duration::as_millis).collect();
    assert!(distinct.len() > 150, "only {} distinct delays", distinct.len());
    assert!(first_delay("x", Duration::from_secs(1), w) < Duration::from_secs(1));
    assert_eq!(
        first_delay("x", Duration::from_secs(30), w),
        first_delay("x", Duration::from_secs(30), w)
    );
    // Many targets spread wider: 100,000 over 50 s.
    assert_eq!(spread_window(100_000), Duration::from_secs(50));
}

#[test]
fn token_comparison() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
}
