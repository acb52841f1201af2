//! The RouterOS API word codec, as pure functions.
//!
//! A sentence is a list of words ended by an empty word. A word is its length
//! then its bytes; the length takes 1 to 5 bytes:
//!
//! | length              | bytes | encoding                      |
//! |---------------------|-------|-------------------------------|
//! | < 0x80              | 1     | `len`                         |
//! | < 0x4000            | 2     | `len \| 0x8000`               |
//! | < 0x20_0000         | 3     | `len \| 0xC0_0000`            |
//! | < 0x1000_0000       | 4     | `len \| 0xE000_0000`          |
//! | otherwise           | 5     | `0xF0` then `len` (4 bytes)   |
//!
//! A first byte of `0xF8` or more is a reserved control byte.

/// The longest word accepted from a router (16 MiB); a longer one is a
/// protocol error, not an allocation.
pub const MAX_WORD: usize = 16 << 20;

/// Why bytes are not a RouterOS API word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    #[error("reserved control byte {0:#04x} where a word length was expected")]
    Control(u8),
    #[error("a word of {0} bytes is longer than the {MAX_WORD} accepted")]
    TooLong(u64),
}

/// Appends the encoded length `len` to `out`.
#[allow(clippy::cast_possible_truncation)]
pub fn encode_len(len: usize, out: &mut Vec<u8>) {
    let n = len as u64;
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x4000 {
        out.extend_from_slice(&((n as u16) | 0x8000).to_be_bytes());
    } else if n < 0x20_0000 {
        out.extend_from_slice(&((n as u32) | 0xC0_0000).to_be_bytes()[1..]);
    } else if n < 0x1000_0000 {
        out.extend_from_slice(&((n as u32) | 0xE000_0000).to_be_bytes());
    } else {
        out.push(0xF0);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// Decodes a length at the start of `buf`: `(length, bytes it took)`, or
/// `None` when `buf` holds only part of it.
pub fn decode_len(buf: &[u8]) -> Result<Option<(usize, usize)>, WordError> {
    let Some(&b) = buf.first() else { return Ok(None) };
    let (size, first) = match b {
        0x00..=0x7F => (1, u64::from(b)),
        0x80..=0xBF => (2, u64::from(b & 0x3F)),
        0xC0..=0xDF => (3, u64::from(b & 0x1F)),
        0xE0..=0xEF => (4, u64::from(b & 0x0F)),
        0xF0 => (5, 0),
        _ => return Err(WordError::Control(b)),
    };
    if buf.len() < size {
        return Ok(None);
    }
    let n = buf[1..size].iter().fold(first, |acc, x| (acc << 8) | u64::from(*x));
    if n > MAX_WORD as u64 {
        return Err(WordError::TooLong(n));
    }
    Ok(Some((usize::try_from(n).map_err(|_| WordError::TooLong(n))?, size)))
}

/// Appends one word to `out`.
pub fn encode_word(word: &[u8], out: &mut Vec<u8>) {
    encode_len(word.len(), out);
    out.extend_from_slice(word);
}

/// A whole sentence: its words, then the empty word.
pub fn encode_sentence<S: AsRef<str>>(words: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(words.iter().map(|w| w.as_ref().len() + 1).sum::<usize>() + 1);
    for w in words {
        encode_word(w.as_ref().as_bytes(), &mut out);
    }
    out.push(0);
    out
}

/// Decodes the sentence at the start of `buf`: its words (not the empty
/// word ending it) and the bytes it took, or `None` while incomplete.
/// Words are read as UTF-8, invalid sequences replaced (RouterOS sends names
/// in the router's code page).
pub fn decode_sentence(buf: &[u8]) -> Result<Option<(Vec<String>, usize)>, WordError> {
    let mut at = 0;
    let mut words = Vec::new();
    loop {
        let Some((len, size)) = decode_len(&buf[at..])? else {
            return Ok(None);
        };
        at += size;
        if len == 0 {
            return Ok(Some((words, at)));
        }
        let Some(word) = buf.get(at..at + len) else {
            return Ok(None);
        };
        words.push(String::from_utf8_lossy(word).into_owned());
        at += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn len_bytes(n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        encode_len(n, &mut v);
        v
    }

    #[test]
    fn each_length_form_at_its_edges() {
        let cases: [(usize, &[u8]); 10] = [
            (0, &[0x00]),
            (0x7F, &[0x7F]),
            (0x80, &[0x80, 0x80]),
            (0x3FFF, &[0xBF, 0xFF]),
            (0x4000, &[0xC0, 0x40, 0x00]),
            (0x1F_FFFF, &[0xDF, 0xFF, 0xFF]),
            (0x20_0000, &[0xE0, 0x20, 0x00, 0x00]),
            (0x0FFF_FFFF, &[0xEF, 0xFF, 0xFF, 0xFF]),
            (0x1000_0000, &[0xF0, 0x10, 0x00, 0x00, 0x00]),
            (0x1234, &[0x92, 0x34]),
        ];
        for (n, want) in cases {
            assert_eq!(len_bytes(n), want, "encoding {n:#x}");
        }
        // Decoding: lengths up to MAX_WORD come back; longer are refused.
        for (n, bytes) in cases.iter().take(7) {
            assert_eq!(decode_len(bytes), Ok(Some((*n, bytes.len()))), "decoding {n:#x}");
        }
        assert_eq!(decode_len(&[0xE1, 0x00, 0x00, 0x00]), Ok(Some((MAX_WORD, 4))));
        assert_eq!(
            decode_len(&[0xEF, 0xFF, 0xFF, 0xFF]),
            Err(WordError::TooLong(0x0FFF_FFFF))
        );
        assert_eq!(
            decode_len(&[0xF0, 0x10, 0x00, 0x00, 0x00]),
            Err(WordError::TooLong(0x1000_0000))
        );
        assert_eq!(decode_len(&[0xF8]), Err(WordError::Control(0xF8)));
        assert_eq!(decode_len(&[0xFF, 0, 0]), Err(WordError::Control(0xFF)));
    }

    #[test]
    fn partial_input_waits_for_more() {
        assert_eq!(decode_len(&[]), Ok(None));
        assert_eq!(decode_len(&[0xC0, 0x40]), Ok(None));
        let s = encode_sentence(&["/login", "=name=admin", "=password=x"]);
        for cut in 0..s.len() {
            assert_eq!(decode_sentence(&s[..cut]), Ok(None), "cut at {cut}");
        }
        let (words, used) = decode_sentence(&s).unwrap().unwrap();
        assert_eq!(words, ["/login", "=name=admin", "=password=x"]);
        assert_eq!(used, s.len());
    }

    #[test]
    fn a_known_sentence_byte_for_byte() {
        let s = encode_sentence(&["/interface/print", ".tag=7"]);
        let mut want = vec![16];
        want.extend(b"/interface/print");
        want.push(6);
        want.extend(b".tag=7");
        want.push(0);
        assert_eq!(s, want);
        // Two sentences back to back: the first is taken, the rest left.
        let mut two = encode_sentence(&["!re", "=name=ether1"]);
        two.extend(encode_sentence(&["!done"]));
        let (w, used) = decode_sentence(&two).unwrap().unwrap();
        assert_eq!(w, ["!re", "=name=ether1"]);
        assert_eq!(decode_sentence(&two[used..]).unwrap().unwrap().0, ["!done"]);
    }

    #[test]
    fn a_long_word_uses_the_wider_forms() {
        let long = "x".repeat(0x4000 + 3);
        let s = encode_sentence(&[long.as_str()]);
        assert_eq!(&s[..3], &[0xC0, 0x40, 0x03]);
        assert_eq!(decode_sentence(&s).unwrap().unwrap().0[0].len(), 0x4003);
    }

    proptest! {
        #[test]
        fn lengths_round_trip(n in 0usize..=MAX_WORD) {
            let b = len_bytes(n);
            prop_assert_eq!(decode_len(&b), Ok(Some((n, b.len()))));
        }

        #[test]
        fn sentences_round_trip(words in proptest::collection::vec("[^\u{0}]{1,300}", 0..8)) {
            let s = encode_sentence(&words);
            let (back, used) = decode_sentence(&s).unwrap().unwrap();
            prop_assert_eq!(back, words);
            prop_assert_eq!(used, s.len());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_sentence(&bytes);
        }
    }
}
