//! The router page's traffic history: each interface's last 24 hours from
//! the collector's `GetInterfaceTraffic` (the REST route's call, see
//! [`crate::traffic`]), drawn on the server as a small inline SVG (no
//! script): the inbound and outbound averages per 5 minutes, and the range's
//! 95th percentile as a dashed line.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pantau_proto::v1 as pb;
use serde::Serialize;

use super::routers::rate;

/// How far back the chart looks.
pub const SPAN: Duration = Duration::from_secs(86_400);
/// Interfaces charted per page, at most (the first ones listed).
pub const MOST: usize = 32;
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;
/// Points are averaged into buckets this long (288 a day).
const BUCKET_SECS: u64 = 300;

/// One interface's chart, as the template shows it.
#[derive(Debug, Serialize)]
pub struct Chart {
    pub name: String,
    /// The SVG, or empty when there is no data yet.
    pub svg: minijinja::Value,
    pub p95: String,
    pub p95_in: String,
    pub p95_out: String,
    pub peak: String,
    pub points: usize,
    /// Why there is no chart (the collector's answer), if so.
    pub error: Option<String>,
}

fn secs(t: Option<&prost_types::Timestamp>) -> Option<u64> {
    t.and_then(pantau_core::time::from_timestamp)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

/// The chart of `r`, a 24-hour answer ending at `to`.
pub fn chart(name: String, r: &pb::GetInterfaceTrafficResponse, to: SystemTime) -> Chart {
    let end = to.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let start = end.saturating_sub(SPAN.as_secs());
    // 5-minute buckets: (sum in, sum out, n) by bucket index.
    let buckets = (SPAN.as_secs() / BUCKET_SECS) as usize;
    let mut acc = vec![(0.0_f64, 0.0_f64, 0_u32); buckets];
    let mut peak = 0.0_f64;
    // The collector's answer is not trusted to be finite.
    let fin = |v: f64| if v.is_finite() && v >= 0.0 { v } else { 0.0 };
    let p95_bps = fin(r.p95_bps);
    for p in &r.points {
        let Some(at) = secs(p.start.as_ref()) else { continue };
        if at < start || at >= end {
            continue;
        }
        let i = (((at - start) / BUCKET_SECS) as usize).min(buckets - 1);
        acc[i].0 += fin(p.in_avg_bps);
        acc[i].1 += fin(p.out_avg_bps);
        acc[i].2 += 1;
        peak = peak.max(fin(p.in_max_bps)).max(fin(p.out_max_bps));
    }
    let avg: Vec<Option<(f64, f64)>> = acc
        .iter()
        .map(|(i, o, n)| (*n > 0).then(|| (i / f64::from(*n), o / f64::from(*n))))
        .collect();
    let top = avg
        .iter()
        .flatten()
        .fold(p95_bps, |m, (i, o)| m.max(*i).max(*o))
        .max(1.0);
    let points = avg.iter().flatten().count();
    Chart {
        svg: if points == 0 {
            minijinja::Value::from("")
        } else {
            minijinja::Value::from_safe_string(draw(&avg, top, p95_bps))
        },
        p95: rate(p95_bps),
        p95_in: rate(fin(r.p95_in_bps)),
        p95_out: rate(fin(r.p95_out_bps)),
        peak: rate(peak),
        points,
        error: None,
        name,
    }
}

/// A chart that could not be had.
pub fn missing(name: String, why: String) -> Chart {
    Chart {
        name,
        svg: minijinja::Value::from(""),
        p95: String::new(),
        p95_in: String::new(),
        p95_out: String::new(),
        peak: String::new(),
        points: 0,
        error: Some(why),
    }
}

/// A path through the buckets that have data, broken at the gaps.
fn path(avg: &[Option<(f64, f64)>], top: f64, pick: impl Fn((f64, f64)) -> f64) -> String {
    let step = WIDTH / avg.len() as f64;
    let mut d = String::new();
    let mut pen_down = false;
    for (i, v) in avg.iter().enumerate() {
        match v {
            Some(v) => {
                let x = (i as f64 + 0.5) * step;
                let y = HEIGHT - pick(*v) / top * HEIGHT;
                let _ = write!(d, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    d.trim_end().to_owned()
}

fn draw(avg: &[Option<(f64, f64)>], top: f64, p95: f64) -> String {
    let y95 = HEIGHT - p95 / top * HEIGHT;
    format!(
        concat!(
            r##"<svg class="traffic-history" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" "##,
            r##"aria-label="inbound and outbound traffic, last 24 hours, with the 95th percentile" xmlns="http://www.w3.org/2000/svg">"##,
            r##"<rect x="0" y="0" width="{w}" height="{h}" fill="none" stroke="#ccc"/>"##,
            r##"<path class="in" d="{din}" fill="none" stroke="#2a7ab0" stroke-width="1.5"/>"##,
            r##"<path class="out" d="{dout}" fill="none" stroke="#d9822b" stroke-width="1.5"/>"##,
            r##"<line class="p95" x1="0" x2="{w}" y1="{y95:.1}" y2="{y95:.1}" stroke="#c0392b" stroke-dasharray="4 3"/>"##,
            r##"<text x="4" y="12" font-size="10" fill="#666">{top}</text>"##,
            r##"</svg>"##
        ),
        w = WIDTH,
        h = HEIGHT,
        din = path(avg, top, |v| v.0),
        dout = path(avg, top, |v| v.1),
        y95 = y95,
        top = rate(top),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pantau_core::time::to_timestamp;

    #[test]
    fn draws_the_averages_with_gaps_and_the_p95() {
        let to = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |ago: u64| Some(to_timestamp(to - Duration::from_secs(ago)));
        let point = |ago: u64, bps: f64| pb::TrafficPoint {
            start: at(ago),
            samples: 6,
            in_avg_bps: bps,
            out_avg_bps: bps / 2.0,
            in_max_bps: bps * 2.0,
            ..Default::default()
        };
        let r = pb::GetInterfaceTrafficResponse {
            points: vec![point(3600, 1e6), point(3540, 3e6), point(60, 2e6), point(90_000, 9e9)],
            p95_bps: 3e6,
            p95_in_bps: 3e6,
            p95_out_bps: 1.5e6,
            ..Default::default()
        };
        let c = chart("ether1".into(), &r, to);
        let svg = c.svg.to_string();
        assert_eq!(
            c.points, 2,
            "two 5-minute buckets; the point older than 24 h is left out"
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        // Two runs, so two moves in each path.
        let d_in = svg
            .split("class=\"in\" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(d_in.matches('M').count(), 2, "{d_in}");
        assert!(svg.contains("class=\"p95\""), "{svg}");
        assert_eq!(c.p95, "3.0 Mbit/s");
        assert_eq!(c.peak, "6.0 Mbit/s");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        let hostile = pb::GetInterfaceTrafficResponse {
            points: vec![pb::TrafficPoint {
                start: at(30),
                in_avg_bps: f64::NAN,
                out_avg_bps: f64::INFINITY,
                in_max_bps: -1.0,
                ..Default::default()
            }],
            p95_bps: f64::NAN,
            ..Default::default()
        };
        let h = chart("x".into(), &hostile, to).svg.to_string();
        assert!(!h.contains("NaN") && !h.contains("inf"), "{h}");
        let empty = chart("e".into(), &pb::GetInterfaceTrafficResponse::default(), to);
        assert_eq!((empty.points, empty.svg.to_string()), (0, String::new()));
    }
}
