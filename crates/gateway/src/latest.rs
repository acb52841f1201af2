//! The latest result of every target at every location, kept as its
//! encoding alone. The encoding holds what an entry is found and ordered by
//! (its location, target and time), so the table hashes and compares those
//! read from the bytes (a [`Head`]) instead of keeping a key beside them:
//! an entry is the 32 bytes of its `Bytes`. Keyed by a boxed
//! `location \0 target` it was 64 bytes and a key of about 32 more, some
//! 7 MiB at 100,000 targets. On the in-process bus the bytes are the
//! collector's own (shared, not copied).

use bytes::Bytes;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use pantau_proto::prost::Message as _;
use pantau_proto::v1::CheckResult;

/// A result's `checked_at`, ordered; an unset time before every set one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    seconds: i64,
    nanos: i32,
}

impl Stamp {
    const UNSET: Self = Self {
        seconds: i64::MIN,
        nanos: i32::MIN,
    };

    pub fn of(t: Option<&prost_types::Timestamp>) -> Self {
        t.map_or(Self::UNSET, |t| Self {
            seconds: t.seconds,
            nanos: t.nanos,
        })
    }
}

/// What a kept result is found and ordered by, read from its encoding
/// without decoding the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head<'a> {
    pub target: &'a str,
    pub location: &'a str,
    pub at: Stamp,
}

/// `CheckResult`'s field numbers read here (proto/pantau/v1/events.proto).
const TARGET_ID: u64 = 1;
const LOCATION: u64 = 4;
const CHECKED_AT: u64 = 7;

fn varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&x, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(x & 0x7f) << (7 * i);
        if x < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Walks the fields of one protobuf message, handing each length-delimited
/// one to `f`; `None` on anything malformed (a group, a cut field).
fn fields<'a>(
    mut b: &'a [u8],
    mut f: impl FnMut(u64, &'a [u8]) -> Option<()>,
    mut g: impl FnMut(u64, u64),
) -> Option<()> {
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let field = key >> 3;
        match key & 7 {
            0 => g(field, varint(&mut b)?),
            1 => b = b.get(8..)?,
            5 => b = b.get(4..)?,
            2 => {
                let n = usize::try_from(varint(&mut b)?).ok()?;
                let value = b.get(..n)?;
                b = &b[n..];
                f(field, value)?;
            }
            _ => return None,
        }
    }
    Some(())
}

/// The head of an encoded `CheckResult`; `None` when it is malformed. A
/// field given twice counts its last value, as a decoder reads a scalar.
pub fn head(bytes: &[u8]) -> Option<Head<'_>> {
    let mut h = Head {
        target: "",
        location: "",
        at: Stamp::UNSET,
    };
    fields(
        bytes,
        |field, value| {
            match field {
                TARGET_ID => h.target = std::str::from_utf8(value).ok()?,
                LOCATION => h.location = std::str::from_utf8(value).ok()?,
                CHECKED_AT => {
                    let mut at = Stamp { seconds: 0, nanos: 0 };
                    fields(
                        value,
                        |_, _| Some(()),
                        |f, v| match f {
                            // int64 and int32 as varints (two's complement).
                            1 => at.seconds = v as i64,
                            2 => at.nanos = v as i64 as i32,
                            _ => {}
                        },
                    )?;
                    h.at = at;
                }
                _ => {}
            }
            Some(())
        },
        |_, _| {},
    )?;
    Some(h)
}

/// The latest result per location and target.
#[derive(Default)]
pub struct Latest {
    table: HashTable<Bytes>,
    hasher: std::hash::RandomState,
}

impl Latest {
    fn hash(hasher: &std::hash::RandomState, location: &str, target: &str) -> u64 {
        use std::hash::BuildHasher as _;
        hasher.hash_one((location, target))
    }

    /// Keeps `r` (encoded by `encoded`) if it is the newest of its target
    /// and location. Bytes whose head does not say what `r` says (a field
    /// given twice, which a decoder merges) are replaced by `r` encoded
    /// anew, so every kept entry is found by what it holds.
    pub fn keep(&mut self, r: &CheckResult, encoded: impl FnOnce() -> Bytes) -> bool {
        let at = Stamp::of(r.checked_at.as_ref());
        let (location, target) = (r.location.as_str(), r.target_id.as_str());
        let hash = Self::hash(&self.hasher, location, target);
        let same = |b: &Bytes| head(b).is_some_and(|h| h.location == location && h.target == target);
        let hasher = &self.hasher;
        let rehash = |b: &Bytes| head(b).map_or(0, |h| Self::hash(hasher, h.location, h.target));
        let canonical = |b: Bytes| {
            let h = head(&b);
            if h == Some(Head { target, location, at }) {
                b
            } else {
                Bytes::from(r.encode_to_vec())
            }
        };
        match self.table.entry(hash, same, rehash) {
            Entry::Occupied(mut o) => {
                if head(o.get()).is_some_and(|h| h.at > at) {
                    return false;
                }
                *o.get_mut() = canonical(encoded());
                true
            }
            Entry::Vacant(v) => {
                v.insert(canonical(encoded()));
                true
            }
        }
    }

    /// Every kept result's encoding.
    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.table.iter()
    }

    /// How many results are kept.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(location: &str, target: &str, seconds: i64) -> CheckResult {
        CheckResult {
            target_id: target.into(),
            location: location.into(),
            target_name: "a name that is not the key".into(),
            message: "x".repeat(300),
            checked_at: Some(prost_types::Timestamp { seconds, nanos: -5 }),
            labels: [("location".to_owned(), "elsewhere".to_owned())].into(),
            ..Default::default()
        }
    }

    fn keep(l: &mut Latest, r: &CheckResult) -> bool {
        l.keep(r, || Bytes::from(r.encode_to_vec()))
    }

    #[test]
    fn the_head_is_read_from_the_bytes() {
        let r = result("jakarta", "web-1", 1_800_000_000);
        let b = r.encode_to_vec();
        assert_eq!(
            head(&b),
            Some(Head {
                target: "web-1",
                location: "jakarta",
                at: Stamp::of(r.checked_at.as_ref())
            })
        );
        let unset = CheckResult {
            checked_at: None,
            ..r.clone()
        };
        assert_eq!(head(&unset.encode_to_vec()).map(|h| h.at), Some(Stamp::UNSET));
        // Garbage: cut anywhere, a group's wire type, a runaway varint,
        // text that is not UTF-8. Never a panic.
        for cut in 0..b.len() {
            let _ = head(&b[..cut]);
        }
        assert_eq!(head(&[0x0b]), None);
        assert_eq!(head(&[0x80; 12]), None);
        assert_eq!(head(&[0x0a, 0x02, 0xff, 0xfe]), None);
        assert_eq!(head(&[0x0a, 0x7f, b'a']), None);
    }

    #[test]
    fn one_entry_per_location_and_target_and_the_newest_wins() {
        let mut l = Latest::default();
        assert!(keep(&mut l, &result("a", "web", 10)));
        assert!(keep(&mut l, &result("b", "web", 10)));
        assert!(keep(&mut l, &result("a", "db", 10)));
        // The same key split elsewhere is another key.
        assert!(keep(&mut l, &result("a\u{0}w", "eb", 10)));
        assert_eq!(l.len(), 4);
        assert!(!keep(&mut l, &result("a", "web", 9)), "older than kept");
        assert!(keep(&mut l, &result("a", "web", 11)));
        assert_eq!(l.len(), 4);
        let mut kept: Vec<(String, String, i64)> = l
            .iter()
            .map(|b| CheckResult::decode(&b[..]).unwrap())
            .map(|r| (r.location, r.target_id, r.checked_at.unwrap().seconds))
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                ("a", "db", 10),
                ("a", "web", 11),
                ("a\u{0}w", "eb", 10),
                ("b", "web", 10)
            ]
            .map(|(l, t, s)| (l.to_owned(), t.to_owned(), s))
        );
        // Grows past its first tables and still finds every entry.
        for i in 0..5_000 {
            assert!(keep(&mut l, &result("a", &format!("t{i}"), 1)));
        }
        for i in 0..5_000 {
            assert!(!keep(&mut l, &result("a", &format!("t{i}"), 0)));
        }
        assert_eq!(l.len(), 5_004);
    }

    #[test]
    fn bytes_that_say_another_key_are_kept_as_the_result_encoded_anew() {
        let r = result("a", "web", 10);
        // A target id given twice: a decoder reads the last, and so does the head.
        let mut twice = r.encode_to_vec();
        twice.extend_from_slice(&[0x0a, 0x03]);
        twice.extend_from_slice(b"db!");
        let mut l = Latest::default();
        assert!(l.keep(&r, || Bytes::from(twice.clone())));
        let kept = l.iter().next().unwrap();
        assert_eq!(head(kept).map(|h| h.target), Some("web"));
        assert_eq!(&kept[..], &r.encode_to_vec()[..]);
        // And it is found again under its own key.
        assert!(!keep(&mut l, &result("a", "web", 9)));
        assert_eq!(l.len(), 1);
    }
}
