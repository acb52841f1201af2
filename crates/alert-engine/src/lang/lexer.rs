//! Tokens of the rule language, each with the byte offset where it starts.

use std::time::Duration;

use super::ParseError;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Number(f64),
    Str(String),
    Duration(Duration),
    And,
    Or,
    Not,
    For,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    /// `==`
    EqEq,
    /// `=` (label matchers only)
    Eq,
    /// `!=`
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Number(n) => format!("the number {n}"),
            Tok::Str(s) => format!("the string \"{s}\""),
            Tok::Duration(d) => format!("the duration {}", humantime::format_duration(*d)),
            Tok::And => "`and`".into(),
            Tok::Or => "`or`".into(),
            Tok::Not => "`not`".into(),
            Tok::For => "`for`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
            Tok::EqEq => "`==`".into(),
            Tok::Eq => "`=`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::Lt => "`<`".into(),
            Tok::Le => "`<=`".into(),
            Tok::Gt => "`>`".into(),
            Tok::Ge => "`>=`".into(),
            Tok::Eof => "the end of the expression".into(),
        }
    }
}

/// A token and the byte offset of its first character.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub tok: Tok,
    pub at: usize,
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub fn lex(src: &str) -> Result<Vec<Spanned>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let single = |tok| Spanned { tok, at: start };
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => out.push(single(Tok::LParen)),
            b')' => out.push(single(Tok::RParen)),
            b'{' => out.push(single(Tok::LBrace)),
            b'}' => out.push(single(Tok::RBrace)),
            b'[' => out.push(single(Tok::LBracket)),
            b']' => out.push(single(Tok::RBracket)),
            b',' => out.push(single(Tok::Comma)),
            b'=' | b'!' | b'<' | b'>' => {
                let next_eq = bytes.get(i + 1) == Some(&b'=');
                let tok = match (c, next_eq) {
                    (b'=', true) => Tok::EqEq,
                    (b'=', false) => Tok::Eq,
                    (b'!', true) => Tok::Ne,
                    (b'!', false) => {
                        return Err(ParseError::new(
                            src,
                            start,
                            "`!` must be followed by `=`; use `not` to negate",
                        ));
                    }
                    (b'<', true) => Tok::Le,
                    (b'<', false) => Tok::Lt,
                    (b'>', true) => Tok::Ge,
                    _ => Tok::Gt,
                };
                if next_eq {
                    i += 1;
                }
                out.push(single(tok));
            }
            b'"' | b'\'' => {
                let (s, end) = string(src, start)?;
                out.push(Spanned {
                    tok: Tok::Str(s),
                    at: start,
                });
                i = end;
                continue;
            }
            b'0'..=b'9' | b'.' => {
                let (tok, end) = number_or_duration(src, start)?;
                out.push(Spanned { tok, at: start });
                i = end;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = i;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
                {
                    end += 1;
                }
                let word = &src[start..end];
                let tok = match word.to_ascii_lowercase().as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "for" => Tok::For,
                    _ => Tok::Ident(word.to_owned()),
                };
                out.push(Spanned { tok, at: start });
                i = end;
                continue;
            }
            _ => {
                let ch = src[start..].chars().next().unwrap_or('?');
                return Err(ParseError::new(src, start, format!("unexpected character `{ch}`")));
            }
        }
        i += 1;
    }
    out.push(Spanned {
        tok: Tok::Eof,
        at: src.len(),
    });
    Ok(out)
}

fn string(src: &str, start: usize) -> Result<(String, usize), ParseError> {
    let quote = src.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        match ch {
            c if c == quote => return Ok((out, start + 1 + off + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, c @ ('\\' | '"' | '\''))) => out.push(c),
                Some((o, c)) => {
                    return Err(ParseError::new(
                        src,
                        start + 1 + o,
                        format!("unknown escape `\\{c}` in a string (use \\\\, \\\", \\', \\n or \\t)"),
                    ));
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(ParseError::new(src, start, "this string is never closed"))
}

fn number_or_duration(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let b = src.as_bytes();
    let mut i = start;
    let digits = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        digits(&mut i);
    }
    // An exponent: `e` then digits (not the start of a word like `eq`).
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = j;
            digits(&mut i);
        }
    }
    let text = &src[start..i];
    let value: f64 = text
        .parse()
        .map_err(|_| ParseError::new(src, start, format!("`{text}` is not a number")))?;
    if i < b.len() && b[i].is_ascii_alphabetic() {
        if text.contains(['.', 'e', 'E']) {
            return Err(ParseError::new(
                src,
                start,
                "a duration is whole numbers with units, such as 90s or 1h30m",
            ));
        }
        // A duration: number-unit pairs such as 5m, 1h30m, 250ms.
        return duration(src, start);
    }
    Ok((Tok::Number(value), i))
}

fn duration(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let b = src.as_bytes();
    let mut i = start;
    let mut total = Duration::ZERO;
    while i < b.len() && b[i].is_ascii_digit() {
        let n_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n: u64 = src[n_start..i]
            .parse()
            .map_err(|_| ParseError::new(src, n_start, "this duration is too large"))?;
        let u_start = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit_ms: u64 = match &src[u_start..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => {
                return Err(ParseError::new(
                    src,
                    u_start,
                    "a duration needs a unit after every number (ms, s, m, h, d, w)",
                ));
            }
            u => {
                return Err(ParseError::new(
                    src,
                    u_start,
                    format!("unknown duration unit `{u}`: use ms, s, m, h, d or w"),
                ));
            }
        };
        let part = n
            .checked_mul(unit_ms)
            .ok_or_else(|| ParseError::new(src, n_start, "this duration is too large"))?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(|| ParseError::new(src, n_start, "this duration is too large"))?;
    }
    if i < b.len() && (b[i] == b'.' || b[i] == b'_') {
        return Err(ParseError::new(
            src,
            i,
            "a duration is whole numbers with units, such as 90s or 1h30m",
        ));
    }
    Ok((Tok::Duration(total), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_the_pieces() {
        assert_eq!(
            toks("cpu_usage > 80 for 5m"),
            [
                Tok::Ident("cpu_usage".into()),
                Tok::Gt,
                Tok::Number(80.0),
                Tok::For,
                Tok::Duration(Duration::from_secs(300)),
                Tok::Eof
            ]
        );
        assert_eq!(toks("1h30m")[0], Tok::Duration(Duration::from_secs(5400)));
        assert_eq!(toks("250ms")[0], Tok::Duration(Duration::from_millis(250)));
        assert_eq!(toks("1e3")[0], Tok::Number(1000.0));
        assert_eq!(toks("0.5")[0], Tok::Number(0.5));
        assert_eq!(toks(r#""a\"b""#)[0], Tok::Str("a\"b".into()));
        assert_eq!(toks("'x'")[0], Tok::Str("x".into()));
        assert_eq!(toks("a != b")[1], Tok::Ne);
    }

    #[test]
    fn errors_say_where_and_why() {
        let e = lex("a > 5x").unwrap_err();
        assert_eq!(
            (e.column, e.reason.as_str()),
            (6, "unknown duration unit `x`: use ms, s, m, h, d or w")
        );
        let e = lex("a == \"open").unwrap_err();
        assert_eq!(e.column, 6);
        assert!(e.reason.contains("never closed"));
        let e = lex("a ! b").unwrap_err();
        assert_eq!(e.column, 3);
        assert!(lex("a # b").unwrap_err().reason.contains("unexpected character `#`"));
    }
}
