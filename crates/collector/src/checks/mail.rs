//! Mail: SMTP, IMAP and POP3. Connect (TLS from the first byte with
//! `use_tls`), read the greeting, ask what the server offers (EHLO,
//! CAPABILITY, CAPA), upgrade with STARTTLS (STLS) when asked, and report
//! the certificate and its expiry as the `tls` check does; then say goodbye
//! (QUIT, LOGOUT). Every line the server sends is bounded ([`MAX_LINE`],
//! [`MAX_READ`]) and decoded as untrusted text; a server that sends data
//! after its STARTTLS answer, before the handshake, is refused (that data
//! would be injected into the TLS session).

use std::sync::Arc;
use std::time::SystemTime;

use pantau_config::{MailProtocol, MailTls};
use pantau_proto::v1::{CertificateInfo, FailureReason, MailDetail, check_result::Detail};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::{Outcome, cert, tcp, trust};

/// Longest line a server may send (SMTP's is 512; IMAP capability lines
/// are longer).
pub const MAX_LINE: usize = 8 * 1024;
/// Most bytes read from a server in one check.
pub const MAX_READ: usize = 64 * 1024;
/// Most capabilities kept in a result.
const MAX_CAPABILITIES: usize = 32;
/// Most lines of one multi-line answer.
const MAX_LINES: usize = 200;

/// A compiled `mail` target.
#[derive(Clone)]
pub struct MailSpec {
    pub protocol: MailProtocol,
    pub address: String,
    pub mode: MailTls,
    pub expect: Option<String>,
    pub warn_days: u32,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for MailSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSpec")
            .field("protocol", &self.protocol)
            .field("address", &self.address)
            .field("mode", &self.mode)
            .field("expect", &self.expect)
            .field("warn_days", &self.warn_days)
            .finish_non_exhaustive()
    }
}

impl MailSpec {
    /// Compiles `m`; an error names the field (`server_name`, `ca_file`, …).
    pub fn new(m: &pantau_config::MailTarget) -> Result<Self, (&'static str, String)> {
        let mode = m.tls_mode();
        let tls = if mode == MailTls::None {
            None
        } else {
            let config = trust::client_config(&m.tls, m.verify_tls.unwrap_or(true), false)
                .map_err(|e| (super::super::target::tls_key(&e), e))?;
            let name = m.server_name.clone().unwrap_or_else(|| m.address.host().to_owned());
            let name = ServerName::try_from(name.clone())
                .map_err(|e| ("server_name", format!("`{name}` is not a TLS server name: {e}")))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        };
        Ok(Self {
            protocol: m.protocol,
            address: m.address.to_string(),
            mode,
            expect: m.expect.clone(),
            warn_days: m.warn_days.unwrap_or(crate::target::WARN_DAYS),
            tls,
        })
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why talking to the server stopped: a typed reason and words.
type Down = (FailureReason, String);

/// A connection read line by line, within bounds.
struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    read: usize,
}

impl Conn {
    fn new(io: Box<dyn Io>) -> Self {
        Self {
            io,
            buf: Vec::new(),
            read: 0,
        }
    }

    /// The next line, without its CRLF.
    async fn line(&mut self) -> Result<String, Down> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > MAX_LINE {
                return Err((
                    FailureReason::Protocol,
                    format!("sent a line longer than {MAX_LINE} bytes: {:?}", shown_bytes(&self.buf)),
                ));
            }
            if self.read > MAX_READ {
                return Err((
                    FailureReason::Protocol,
                    format!("sent more than {MAX_READ} bytes without finishing its answer"),
                ));
            }
            let mut chunk = [0_u8; 2048];
            match self.io.read(&mut chunk).await {
                Ok(0) => {
                    return Err((
                        FailureReason::Protocol,
                        if self.buf.is_empty() {
                            "closed the connection".to_owned()
                        } else {
                            format!("closed the connection mid-line: {:?}", shown_bytes(&self.buf))
                        },
                    ));
                }
                Ok(n) => {
                    self.read += n;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) => return Err((FailureReason::Connect, format!("broke the connection: {e}"))),
            }
        }
    }

    async fn send(&mut self, line: &str) -> Result<(), Down> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.io.write_all(&bytes).await.map_err(|e| {
            (
                FailureReason::Connect,
                format!("broke the connection while we wrote: {e}"),
            )
        })
    }

    /// The connection, for a TLS handshake; refused when the server sent
    /// more than it was asked.
    fn into_io(self) -> Result<Box<dyn Io>, Down> {
        if self.buf.is_empty() {
            Ok(self.io)
        } else {
            Err((
                FailureReason::Protocol,
                format!(
                    "sent data after agreeing to STARTTLS, before the handshake (refused: it would be \
                     injected into the TLS session): {:?}",
                    shown_bytes(&self.buf)
                ),
            ))
        }
    }
}

/// Longest server text put in a message.
const MAX_SHOWN: usize = 100;

fn shown(text: &str) -> String {
    let cut: String = text
        .chars()
        .take(MAX_SHOWN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > MAX_SHOWN {
        format!("{cut}…")
    } else {
        cut
    }
}

fn shown_bytes(b: &[u8]) -> String {
    shown(&String::from_utf8_lossy(&b[..b.len().min(4 * MAX_SHOWN)]))
}

/// An SMTP reply: its code and its lines' text.
async fn smtp_reply(c: &mut Conn) -> Result<(u16, Vec<String>), Down> {
    let mut lines = Vec::new();
    loop {
        let line = c.line().await?;
        let code = line
            .get(..3)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u16>().ok())
            .ok_or_else(|| {
                (
                    FailureReason::Protocol,
                    format!("is not an SMTP server: it sent {:?}", shown(&line)),
                )
            })?;
        let more = line.as_bytes().get(3) == Some(&b'-');
        lines.push(line.get(4..).unwrap_or_default().to_owned());
        if !more {
            return Ok((code, lines));
        }
        if lines.len() >= MAX_LINES {
            return Err((
                FailureReason::Protocol,
                format!("sent more than {MAX_LINES} reply lines"),
            ));
        }
    }
}

/// An IMAP command's untagged lines, once its tagged answer is OK.
async fn imap_command(c: &mut Conn, tag: &str, command: &str) -> Result<Vec<String>, Down> {
    c.send(&format!("{tag} {command}")).await?;
    let mut untagged = Vec::new();
    loop {
        let line = c.line().await?;
        if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
            return if rest.get(..2).is_some_and(|s| s.eq_ignore_ascii_case("OK")) {
                Ok(untagged)
            } else {
                Err((
                    FailureReason::Protocol,
                    format!("answered {command} with {:?}", shown(rest)),
                ))
            };
        }
        untagged.push(line);
        if untagged.len() >= MAX_LINES {
            return Err((
                FailureReason::Protocol,
                format!("sent more than {MAX_LINES} lines to {command}"),
            ));
        }
    }
}

/// The words of `* CAPABILITY a b c`, or of a greeting's `[CAPABILITY a b]`.
fn imap_capabilities(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            let upper = l.to_ascii_uppercase();
            let at = upper.find("CAPABILITY ")?;
            let rest = &l[at + "CAPABILITY ".len()..];
            Some(rest.split(']').next().unwrap_or_default().to_owned())
        })
        .flat_map(|s| s.split_ascii_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// A POP3 single-line answer: `+OK …` is Ok(text), `-ERR …` an error.
async fn pop3_ok(c: &mut Conn, what: &str) -> Result<String, Down> {
    let line = c.line().await?;
    if let Some(rest) = line.strip_prefix("+OK") {
        Ok(rest.trim_start().to_owned())
    } else if line.starts_with("-ERR") {
        Err((
            FailureReason::Protocol,
            format!("answered {what} with {:?}", shown(&line)),
        ))
    } else {
        Err((
            FailureReason::Protocol,
            format!("is not a POP3 server: it sent {:?}", shown(&line)),
        ))
    }
}

/// What a conversation learnt before TLS (or without it).
struct Greeting {
    banner: String,
    /// Every greeting line, for `expect`.
    text: String,
    capabilities: Vec<String>,
}

/// Reads the greeting and asks the capabilities.
async fn greet(c: &mut Conn, protocol: MailProtocol, helo: &str) -> Result<Greeting, Down> {
    match protocol {
        MailProtocol::Smtp => {
            let (code, lines) = smtp_reply(c).await?;
            let text = lines.join("\n");
            if code != 220 {
                return Err((
                    FailureReason::Protocol,
                    format!("greeted with {code} instead of 220: {:?}", shown(&text)),
                ));
            }
            let capabilities = smtp_ehlo(c, helo).await?;
            Ok(Greeting {
                banner: format!("220 {}", lines.first().cloned().unwrap_or_default()),
                text,
                capabilities,
            })
        }
        MailProtocol::Imap => {
            let line = c.line().await?;
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("* BYE") {
                return Err((
                    FailureReason::Protocol,
                    format!("refused the connection: {:?}", shown(&line)),
                ));
            }
            if !(upper.starts_with("* OK") || upper.starts_with("* PREAUTH")) {
                return Err((
                    FailureReason::Protocol,
                    format!("is not an IMAP server: it sent {:?}", shown(&line)),
                ));
            }
            let mut capabilities = imap_capabilities(std::slice::from_ref(&line));
            if capabilities.is_empty() {
                capabilities = imap_capabilities(&imap_command(c, "p1", "CAPABILITY").await?);
            }
            Ok(Greeting {
                banner: line.clone(),
                text: line,
                capabilities,
            })
        }
        MailProtocol::Pop3 => {
            let line = c.line().await?;
            if line.starts_with("-ERR") {
                return Err((
                    FailureReason::Protocol,
                    format!("refused the connection: {:?}", shown(&line)),
                ));
            }
            if !line.starts_with("+OK") {
                return Err((
                    FailureReason::Protocol,
                    format!("is not a POP3 server: it sent {:?}", shown(&line)),
                ));
            }
            c.send("CAPA").await?;
            let mut capabilities = Vec::new();
            if pop3_ok(c, "CAPA").await.is_ok() {
                loop {
                    let l = c.line().await?;
                    if l == "." {
                        break;
                    }
                    if let Some(word) = l.split_ascii_whitespace().next() {
                        capabilities.push(word.to_owned());
                    }
                    if capabilities.len() >= MAX_LINES {
                        return Err((
                            FailureReason::Protocol,
                            format!("sent more than {MAX_LINES} CAPA lines"),
                        ));
                    }
                }
            }
            Ok(Greeting {
                banner: line.clone(),
                text: line,
                capabilities,
            })
        }
    }
}

/// EHLO's keywords; none when the server does not know EHLO.
async fn smtp_ehlo(c: &mut Conn, helo: &str) -> Result<Vec<String>, Down> {
    c.send(&format!("EHLO {helo}")).await?;
    let (code, lines) = smtp_reply(c).await?;
    Ok(if code == 250 {
        lines
            .iter()
            .skip(1)
            .filter_map(|l| l.split_ascii_whitespace().next())
            .map(str::to_ascii_uppercase)
            .collect()
    } else {
        Vec::new()
    })
}

/// Asks for STARTTLS (STLS) after the greeting.
async fn start_tls(c: &mut Conn, protocol: MailProtocol, capabilities: &[String]) -> Result<(), Down> {
    let (word, offered) = match protocol {
        MailProtocol::Smtp | MailProtocol::Imap => ("STARTTLS", "STARTTLS"),
        MailProtocol::Pop3 => ("STLS", "STLS"),
    };
    if !capabilities.iter().any(|c| c.eq_ignore_ascii_case(offered)) {
        return Err((
            FailureReason::Tls,
            format!("does not offer {word} (it offers: {})", shown(&capabilities.join(" "))),
        ));
    }
    match protocol {
        MailProtocol::Smtp => {
            c.send("STARTTLS").await?;
            let (code, lines) = smtp_reply(c).await?;
            if code != 220 {
                return Err((
                    FailureReason::Tls,
                    format!("answered STARTTLS with {code}: {:?}", shown(&lines.join(" "))),
                ));
            }
        }
        MailProtocol::Imap => {
            imap_command(c, "p2", "STARTTLS").await.map_err(|(r, why)| {
                (
                    if r == FailureReason::Protocol {
                        FailureReason::Tls
                    } else {
                        r
                    },
                    why,
                )
            })?;
        }
        MailProtocol::Pop3 => {
            c.send("STLS").await?;
            pop3_ok(c, "STLS").await.map_err(|(r, why)| {
                (
                    if r == FailureReason::Protocol {
                        FailureReason::Tls
                    } else {
                        r
                    },
                    why,
                )
            })?;
        }
    }
    Ok(())
}

/// The TLS session's facts.
struct Session {
    version: String,
    leaf: Option<CertificateInfo>,
}

async fn handshake(spec: &MailSpec, io: Box<dyn Io>) -> Result<(Box<dyn Io>, Session), Down> {
    let Some((connector, name)) = &spec.tls else {
        return Err((FailureReason::Internal, "has no TLS settings compiled".to_owned()));
    };
    match connector.connect(name.clone(), io).await {
        Ok(s) => {
            let (_, conn) = s.get_ref();
            let session = Session {
                version: conn.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default(),
                leaf: conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| cert::info(c.as_ref(), SystemTime::now())),
            };
            Ok((Box::new(s), session))
        }
        Err(e) => {
            let why = trust::refusal(&e).unwrap_or_else(|| e.to_string());
            Err((FailureReason::Tls, format!("failed the TLS handshake: {why}")))
        }
    }
}

/// Says goodbye; an answer is not awaited long.
async fn goodbye(c: &mut Conn, protocol: MailProtocol) {
    let word = match protocol {
        MailProtocol::Smtp | MailProtocol::Pop3 => "QUIT",
        MailProtocol::Imap => "p9 LOGOUT",
    };
    if c.send(word).await.is_ok() {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), c.line()).await;
    }
}

/// Runs the check of `spec`; the caller bounds the time.
pub async fn check(spec: &MailSpec, started: Instant) -> Outcome {
    let address = &spec.address;
    let stream = match tcp::connect(address, started).await {
        Ok(s) => s,
        Err(down) => return down,
    };
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let helo = match stream.local_addr().map(|a| a.ip()) {
        Ok(std::net::IpAddr::V4(ip)) => format!("[{ip}]"),
        Ok(std::net::IpAddr::V6(ip)) => format!("[IPv6:{ip}]"),
        Err(_) => "[127.0.0.1]".to_owned(),
    };
    let mut detail = MailDetail {
        peer,
        protocol: spec.protocol.as_str().to_owned(),
        tls_mode: spec.mode.as_str().to_owned(),
        ..MailDetail::default()
    };
    let result = converse(spec, Box::new(stream), &helo, &mut detail).await;
    let latency = started.elapsed();
    let with = |o: Outcome, d: MailDetail| o.with_detail(Detail::Mail(d));
    match result {
        Err((reason, why)) => with(Outcome::down(latency, reason, format!("{address} {why}")), detail),
        Ok(greeting_text) => {
            if let Some(want) = &spec.expect
                && !greeting_text.contains(want.as_str())
            {
                let o = Outcome::down(
                    latency,
                    FailureReason::Assertion,
                    format!(
                        "{address} greeted with {:?}, which lacks the expected {:?}",
                        shown(&detail.banner),
                        shown(want)
                    ),
                );
                return with(o, detail);
            }
            if spec.mode != MailTls::None {
                match &detail.certificate {
                    None => {
                        let o = Outcome::down(latency, FailureReason::Tls, format!("{address} sent no certificate"));
                        return with(o, detail);
                    }
                    Some(leaf) => {
                        if let Some(problem) = cert::expiry_problem(leaf, spec.warn_days) {
                            return with(Outcome::down(latency, FailureReason::Tls, problem), detail);
                        }
                    }
                }
            }
            Outcome::up(latency, Some(Detail::Mail(detail)))
        }
    }
}

/// The conversation: greeting, capabilities, TLS; the greeting's text, or
/// why it stopped. Fills `detail` as it learns.
async fn converse(spec: &MailSpec, io: Box<dyn Io>, helo: &str, detail: &mut MailDetail) -> Result<String, Down> {
    let io = if spec.mode == MailTls::Implicit {
        let (io, session) = handshake(spec, io).await?;
        detail.tls_version = session.version;
        detail.certificate = session.leaf;
        io
    } else {
        io
    };
    let mut c = Conn::new(io);
    let greeting = greet(&mut c, spec.protocol, helo).await?;
    detail.banner = shown_banner(&greeting.banner);
    detail.capabilities = keep(&greeting.capabilities);
    if spec.mode == MailTls::StartTls {
        start_tls(&mut c, spec.protocol, &greeting.capabilities).await?;
        let (io, session) = handshake(spec, c.into_io()?).await?;
        detail.tls_version = session.version;
        detail.certificate = session.leaf;
        c = Conn::new(io);
        if spec.protocol == MailProtocol::Smtp {
            // RFC 3207: the client forgets what it knew and says EHLO again.
            detail.capabilities = keep(&smtp_ehlo(&mut c, helo).await?);
        }
    }
    goodbye(&mut c, spec.protocol).await;
    Ok(greeting.text)
}

/// A banner as a result keeps it: 256 bytes, control characters replaced.
fn shown_banner(b: &str) -> String {
    let mut out = String::new();
    for ch in b.chars() {
        if out.len() + ch.len_utf8() > 256 {
            break;
        }
        out.push(if ch.is_control() { '?' } else { ch });
    }
    out
}

fn keep(capabilities: &[String]) -> Vec<String> {
    capabilities
        .iter()
        .take(MAX_CAPABILITIES)
        .map(|c| shown_banner(c).chars().take(64).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_capabilities_come_from_the_greeting_or_the_answer() {
        let caps = imap_capabilities(&["* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready.".to_owned()]);
        assert_eq!(caps, ["IMAP4rev1", "STARTTLS", "AUTH=PLAIN"]);
        let caps = imap_capabilities(&["* CAPABILITY IMAP4rev1 LOGINDISABLED".to_owned()]);
        assert_eq!(caps, ["IMAP4rev1", "LOGINDISABLED"]);
        assert!(imap_capabilities(&["* OK ready".to_owned()]).is_empty());
    }

    #[test]
    fn banners_are_bounded_and_cleaned() {
        let b = shown_banner(&format!("220 {}\u{7}", "é".repeat(300)));
        assert!(b.len() <= 256, "{}", b.len());
        assert_eq!(shown_banner("a\tb"), "a?b");
    }
}
