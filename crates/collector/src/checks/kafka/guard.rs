//! A structural check of a broker's answer before `kafka-protocol` decodes
//! it. That crate sizes a `Vec` from an array's count as read off the wire
//! (`Vec::with_capacity(n)`, also a record batch's record count and a
//! record's header count) before decoding an element, so a few hostile
//! bytes claiming two billion elements make an allocation that aborts the
//! process, which no `Result` or `catch_unwind` can stop (upstream:
//! kafka-protocol-rs pull requests #152, #161, #200, open). Every element
//! takes at least one byte, so here each count is held to the bytes left
//! before the crate sees it: a count that cannot fit is a malformed answer.
//!
//! The layouts are those of the fixed versions [`super::client`] sends; an
//! answer to any other request or version is refused, not decoded unguarded.

use kafka_protocol::messages::ApiKey;

/// One field of a non-flexible (pre-KIP-482) message.
#[derive(Debug, Clone, Copy)]
enum F {
    I8,
    I16,
    I32,
    I64,
    /// `int16` length, then bytes.
    Str,
    /// `int16` length or -1.
    NStr,
    /// `int32` length or -1.
    NBytes,
    /// `int32` count, then each element.
    Arr(&'static [F]),
    /// `int32` count or -1.
    NArr(&'static [F]),
}

use F::{Arr, I8, I16, I32, I64, NArr, NBytes, NStr, Str};

const METADATA_V4: &[F] = &[
    I32,                         // throttle_time_ms
    Arr(&[I32, Str, I32, NStr]), // brokers: node_id, host, port, rack
    NStr,                        // cluster_id
    I32,                         // controller_id
    Arr(&[
        I16,                                             // error_code
        Str,                                             // name
        I8,                                              // is_internal
        Arr(&[I16, I32, I32, Arr(&[I32]), Arr(&[I32])]), // partitions: error, index, leader, replicas, isr
    ]),
];
const SASL_HANDSHAKE_V1: &[F] = &[
    I16,         // error_code
    Arr(&[Str]), // mechanisms
];
const SASL_AUTHENTICATE_V1: &[F] = &[
    I16,    // error_code
    NStr,   // error_message
    NBytes, // auth_bytes
    I64,    // session_lifetime_ms
];
const PRODUCE_V3: &[F] = &[
    Arr(&[Str, Arr(&[I32, I16, I64, I64])]), // name; index, error_code, base_offset, log_append_time_ms
    I32,                                     // throttle_time_ms
];
const FETCH_V4: &[F] = &[
    I32, // throttle_time_ms
    Arr(&[
        Str,
        // index, error_code, high_watermark, last_stable_offset, aborted (producer_id, first_offset), records
        Arr(&[I32, I16, I64, I64, NArr(&[I64, I64]), NBytes]),
    ]),
];
const LIST_OFFSETS_V1: &[F] = &[Arr(&[Str, Arr(&[I32, I16, I64, I64])])];
const FIND_COORDINATOR_V1: &[F] = &[I32, I16, NStr, I32, Str, I32];
const OFFSET_FETCH_V1: &[F] = &[Arr(&[Str, Arr(&[I32, I64, NStr, I16])])];
const OFFSET_COMMIT_V2: &[F] = &[Arr(&[Str, Arr(&[I32, I16])])];

fn layout(key: i16, version: i16) -> Option<&'static [F]> {
    let key = ApiKey::try_from(key).ok()?;
    Some(match (key, version) {
        (ApiKey::Metadata, 4) => METADATA_V4,
        (ApiKey::Produce, 3) => PRODUCE_V3,
        (ApiKey::Fetch, 4) => FETCH_V4,
        (ApiKey::ListOffsets, 1) => LIST_OFFSETS_V1,
        (ApiKey::FindCoordinator, 1) => FIND_COORDINATOR_V1,
        (ApiKey::OffsetFetch, 1) => OFFSET_FETCH_V1,
        (ApiKey::OffsetCommit, 2) => OFFSET_COMMIT_V2,
        (ApiKey::SaslHandshake, 1) => SASL_HANDSHAKE_V1,
        (ApiKey::SaslAuthenticate, 1) => SASL_AUTHENTICATE_V1,
        _ => return None,
    })
}

fn take<'a>(buf: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
    if buf.len() < n {
        return Err(format!("{what} needs {n} bytes, {} left", buf.len()));
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Ok(head)
}

fn int(buf: &mut &[u8], n: usize, what: &str) -> Result<i64, String> {
    let b = take(buf, n, what)?;
    Ok(match n {
        2 => i64::from(i16::from_be_bytes([b[0], b[1]])),
        4 => i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        _ => 0,
    })
}

/// A length or count that is `min` (-1 or 0) or more and fits in what is left.
fn count(buf: &mut &[u8], width: usize, nullable: bool, what: &str) -> Result<usize, String> {
    let n = int(buf, width, what)?;
    if n == -1 && nullable {
        return Ok(0);
    }
    let n = usize::try_from(n).map_err(|_| format!("{what} is {n}"))?;
    if n > buf.len() {
        return Err(format!("{what} claims {n} while {} bytes are left", buf.len()));
    }
    Ok(n)
}

fn walk(buf: &mut &[u8], fields: &[F]) -> Result<(), String> {
    for f in fields {
        match *f {
            I8 => {
                take(buf, 1, "an int8")?;
            }
            I16 => {
                take(buf, 2, "an int16")?;
            }
            I32 => {
                take(buf, 4, "an int32")?;
            }
            I64 => {
                take(buf, 8, "an int64")?;
            }
            Str | NStr => {
                let n = count(buf, 2, matches!(f, NStr), "a string's length")?;
                take(buf, n, "a string")?;
            }
            NBytes => {
                let n = count(buf, 4, true, "a bytes field's length")?;
                take(buf, n, "a bytes field")?;
            }
            Arr(elem) | NArr(elem) => {
                let n = count(buf, 4, matches!(f, NArr(_)), "an array's count")?;
                for _ in 0..n {
                    walk(buf, elem)?;
                }
            }
        }
    }
    Ok(())
}

/// Checks the body of an answer (after its v0 header) to request `key` at
/// `version`.
pub fn response(key: i16, version: i16, body: &[u8]) -> Result<(), String> {
    let fields = layout(key, version).ok_or_else(|| format!("no layout to check an answer to api {key} v{version}"))?;
    let mut b = body;
    walk(&mut b, fields)
}

/// An unsigned LEB128 of at most `max` bytes, zigzag-decoded.
fn varint(buf: &mut &[u8], max: usize, what: &str) -> Result<i64, String> {
    let mut v: u64 = 0;
    for i in 0..max {
        let b = take(buf, 1, what)?[0];
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    Err(format!("{what} is longer than {max} bytes"))
}

/// A varint length of -1 (null, when allowed) or one that fits in what is left.
fn var_len(buf: &mut &[u8], nullable: bool, what: &str) -> Result<usize, String> {
    let n = varint(buf, 5, what)?;
    if n == -1 && nullable {
        return Ok(0);
    }
    let n = usize::try_from(n).map_err(|_| format!("{what} is {n}"))?;
    if n > buf.len() {
        return Err(format!("{what} claims {n} while {} bytes are left", buf.len()));
    }
    Ok(n)
}

/// Bytes of a v2 record batch before its records.
const BATCH_HEADER: usize = 61;

/// Checks one whole v2 record batch (base offset through its last record):
/// not compressed, its record count and every record's lengths and header
/// count within the bytes left.
pub fn batch(b: &[u8]) -> Result<(), String> {
    if b.len() < BATCH_HEADER {
        return Err(format!(
            "a record batch of {} bytes is shorter than its header",
            b.len()
        ));
    }
    let magic = b[16];
    if magic != 2 {
        return Err(format!("record batch version {magic} is not supported (only 2)"));
    }
    let attributes = i16::from_be_bytes([b[21], b[22]]);
    if attributes & 0x07 != 0 {
        return Err(format!(
            "the batch is compressed (codec {}), which this collector does not decode",
            attributes & 0x07
        ));
    }
    let records = i32::from_be_bytes([b[57], b[58], b[59], b[60]]);
    let mut rest = &b[BATCH_HEADER..];
    let records = usize::try_from(records).map_err(|_| format!("record count {records}"))?;
    if records > rest.len() {
        return Err(format!("record count {records} with {} bytes of records", rest.len()));
    }
    for _ in 0..records {
        let len = var_len(&mut rest, false, "a record's length")?;
        let mut r = take(&mut rest, len, "a record")?;
        take(&mut r, 1, "a record's attributes")?;
        varint(&mut r, 10, "a timestamp delta")?;
        varint(&mut r, 5, "an offset delta")?;
        let key = var_len(&mut r, true, "a key's length")?;
        take(&mut r, key, "a key")?;
        let value = var_len(&mut r, true, "a value's length")?;
        take(&mut r, value, "a value")?;
        let headers = var_len(&mut r, false, "a header count")?;
        for _ in 0..headers {
            let k = var_len(&mut r, false, "a header key's length")?;
            take(&mut r, k, "a header key")?;
            let v = var_len(&mut r, true, "a header value's length")?;
            take(&mut r, v, "a header value")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_beyond_the_bytes_left_are_refused() {
        // A metadata answer claiming i32::MAX brokers in 8 bytes.
        let mut b = 0i32.to_be_bytes().to_vec();
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        let e = response(ApiKey::Metadata as i16, 4, &b).unwrap_err();
        assert!(e.contains("claims 2147483647"), "{e}");
        // Negative counts and lengths.
        let mut b = 0i32.to_be_bytes().to_vec();
        b.extend_from_slice(&(-5i32).to_be_bytes());
        assert!(response(ApiKey::Metadata as i16, 4, &b).is_err());
        // An unknown request or version is not checked, so refused.
        assert!(response(ApiKey::Metadata as i16, 12, &[]).is_err());
        assert!(response(-3, 0, &[]).is_err());
        // A well-formed empty answer passes.
        let mut ok = Vec::new();
        ok.extend_from_slice(&0i32.to_be_bytes()); // throttle
        ok.extend_from_slice(&0i32.to_be_bytes()); // no brokers
        ok.extend_from_slice(&(-1i16).to_be_bytes()); // no cluster id
        ok.extend_from_slice(&1i32.to_be_bytes()); // controller
        ok.extend_from_slice(&0i32.to_be_bytes()); // no topics
        response(ApiKey::Metadata as i16, 4, &ok).unwrap();
        assert!(response(ApiKey::Metadata as i16, 4, &ok[..ok.len() - 1]).is_err());
    }

    #[test]
    fn batches_with_impossible_counts_are_refused() {
        let mut b = vec![0u8; BATCH_HEADER];
        b[16] = 2;
        b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(batch(&b).unwrap_err().contains("record count"));
        b[57..61].copy_from_slice(&1i32.to_be_bytes());
        // One record: length 7, attributes, ts 0, offset 0, key -1, value -1, then 2^30 headers.
        b.extend_from_slice(&[14, 0, 0, 0, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x08]);
        let e = batch(&b).unwrap_err();
        assert!(e.contains("header count") || e.contains("record"), "{e}");
        b[21] = 0;
        b[22] = 1; // gzip
        assert!(batch(&b).unwrap_err().contains("compressed"));
        b[16] = 1;
        assert!(batch(&b).unwrap_err().contains("version 1"));
        assert!(batch(&[0; 10]).is_err());
    }

    #[test]
    fn varints_are_zigzag_and_bounded() {
        assert_eq!(varint(&mut &[1u8][..], 5, "x"), Ok(-1));
        assert_eq!(varint(&mut &[2u8][..], 5, "x"), Ok(1));
        assert_eq!(varint(&mut &[0xac, 0x02][..], 5, "x"), Ok(150));
        assert!(varint(&mut &[0xff; 6][..], 5, "x").is_err());
        assert!(varint(&mut &[0x80][..], 5, "x").is_err());
    }
}
