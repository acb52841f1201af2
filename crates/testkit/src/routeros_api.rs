//! The RouterOS API side of [`super::RouterOsSim`]: the word codec (1–5
//! byte lengths), one task per connection speaking login, `print` commands
//! with `.proplist` and `?` queries, `!trap`, `!fatal`; and API-SSL.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{ROUTEROS_PASSWORD, ROUTEROS_USER, Shared, lock, select};
use crate::TestkitError;

/// A self-signed certificate for `localhost` and 127.0.0.1: the acceptor,
/// and a directory with its PEM as `ca.pem`.
pub(super) fn self_signed() -> Result<(TlsAcceptor, tempfile::TempDir), TestkitError> {
    let bad = |what: &'static str, e: &dyn std::fmt::Display| {
        TestkitError::io(
            what,
            "the simulator's certificate",
            std::io::Error::other(e.to_string()),
        )
    };
    let key = rcgen::KeyPair::generate().map_err(|e| bad("generate a key for", &e))?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| bad("make", &e))?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pantau RouterOS simulator");
    let cert = params.self_signed(&key).map_err(|e| bad("sign", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("configure TLS with", &e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .map_err(|e| bad("configure TLS with", &e))?;
    let dir = tempfile::Builder::new()
        .prefix("pantau-routeros-")
        .tempdir()
        .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, cert.pem()).map_err(|e| TestkitError::io("write", &pem, e))?;
    Ok((TlsAcceptor::from(Arc::new(config)), dir))
}

pub(super) async fn serve_api(listener: TcpListener, state: Shared, tls: Option<TlsAcceptor>) {
    // Connections live in this set: aborting the server drops them all.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = Arc::clone(&state);
                match tls.clone() {
                    Some(acceptor) => conns.spawn(async move {
                        if let Ok(s) = acceptor.accept(stream).await {
                            api_connection(s, state).await;
                        }
                    }),
                    None => conns.spawn(api_connection(stream, state)),
                };
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Appends RouterOS's encoding of `len` (1–5 bytes).
#[allow(clippy::cast_possible_truncation)]
fn put_len(len: usize, out: &mut Vec<u8>) {
    let n = len as u32;
    match len {
        0..0x80 => out.push(n as u8),
        0x80..0x4000 => out.extend_from_slice(&(0x8000 | n as u16).to_be_bytes()),
        0x4000..0x20_0000 => out.extend_from_slice(&(0xC0_0000 | n).to_be_bytes()[1..]),
        0x20_0000..0x1000_0000 => out.extend_from_slice(&(0xE000_0000 | n).to_be_bytes()),
        _ => {
            out.push(0xF0);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn sentence(words: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in words {
        put_len(w.len(), &mut out);
        out.extend_from_slice(w.as_bytes());
    }
    out.push(0);
    out
}

/// Reads one length (1–5 bytes); `None` at a reserved control byte.
async fn read_len<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Option<usize>> {
    let b = s.read_u8().await?;
    let (more, first) = match b {
        0x00..=0x7F => (0, u32::from(b)),
        0x80..=0xBF => (1, u32::from(b & 0x3F)),
        0xC0..=0xDF => (2, u32::from(b & 0x1F)),
        0xE0..=0xEF => (3, u32::from(b & 0x0F)),
        0xF0 => (4, 0),
        _ => return Ok(None),
    };
    let mut n = first;
    for _ in 0..more {
        n = (n << 8) | u32::from(s.read_u8().await?);
    }
    Ok(Some(n as usize))
}

/// Reads one sentence; `None` on a protocol error.
async fn read_sentence<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Option<Vec<String>>> {
    let mut words = Vec::new();
    loop {
        let Some(len) = read_len(s).await? else { return Ok(None) };
        if len == 0 {
            return Ok(Some(words));
        }
        if len > 1 << 20 {
            return Ok(None);
        }
        let mut w = vec![0; len];
        s.read_exact(&mut w).await?;
        words.push(String::from_utf8_lossy(&w).into_owned());
    }
}

async fn api_connection<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, state: Shared) {
    let mut logged_in = false;
    while let Ok(Some(words)) = read_sentence(&mut stream).await {
        let Some(command) = words.first().cloned() else {
            continue;
        };
        let mut tag = None;
        let mut attrs = Vec::new();
        let mut queries = Vec::new();
        for w in &words[1..] {
            if let Some(t) = w.strip_prefix(".tag=") {
                tag = Some(t.to_owned());
            } else if let Some(a) = w.strip_prefix('=') {
                let (k, v) = a.split_once('=').unwrap_or((a, ""));
                attrs.push((k.to_owned(), v.to_owned()));
            } else if let Some(q) = w.strip_prefix('?') {
                let (k, v) = q.split_once('=').unwrap_or((q, ""));
                queries.push((k.to_owned(), v.to_owned()));
            }
        }
        let tagged = |mut s: Vec<String>| {
            if let Some(t) = &tag {
                s.push(format!(".tag={t}"));
            }
            sentence(&s)
        };
        let fatal = lock(&state).fatal_next.take();
        let fatal = fatal.or_else(|| match command.as_str() {
            "/quit" => Some("session terminated on request".to_owned()),
            "/login" => None,
            _ if !logged_in => Some("not logged in".to_owned()),
            _ => None,
        });
        if let Some(reason) = fatal {
            let _ = stream.write_all(&sentence(&["!fatal".to_owned(), reason])).await;
            let _ = stream.shutdown().await;
            return;
        }
        let mut out = Vec::new();
        if command == "/login" {
            let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
            if get("name") == Some(ROUTEROS_USER) && get("password") == Some(ROUTEROS_PASSWORD) {
                logged_in = true;
            } else {
                out.extend(tagged(vec![
                    "!trap".into(),
                    "=message=invalid user name or password (6)".into(),
                ]));
                if lock(&state).login_failure_closes {
                    let _ = stream.write_all(&out).await;
                    let _ = stream.shutdown().await;
                    return;
                }
            }
        } else {
            let menu = command
                .strip_prefix('/')
                .and_then(|c| c.strip_suffix("/print"))
                .and_then(|m| lock(&state).menu(m));
            match menu {
                Some(rows) => {
                    let proplist = attrs.iter().find(|(k, _)| k == ".proplist").map(|(_, v)| v.as_str());
                    for row in select(rows, &queries, proplist) {
                        let mut s = vec!["!re".to_owned()];
                        s.extend(row.into_iter().map(|(k, v)| format!("={k}={v}")));
                        out.extend(tagged(s));
                    }
                }
                None => out.extend(tagged(vec!["!trap".into(), "=message=no such command".into()])),
            }
        }
        out.extend(tagged(vec!["!done".into()]));
        if stream.write_all(&out).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RouterOsSim;
    use tokio::net::TcpStream;

    #[test]
    fn lengths_use_every_form() {
        let enc = |n| {
            let mut v = Vec::new();
            put_len(n, &mut v);
            v
        };
        assert_eq!(enc(0x7F), [0x7F]);
        assert_eq!(enc(0x80), [0x80, 0x80]);
        assert_eq!(enc(0x4000), [0xC0, 0x40, 0x00]);
        assert_eq!(enc(0x20_0000), [0xE0, 0x20, 0x00, 0x00]);
        assert_eq!(enc(0x1000_0000), [0xF0, 0x10, 0x00, 0x00, 0x00]);
    }

    #[tokio::test]
    async fn login_then_print_with_tags_and_queries() {
        let sim = RouterOsSim::start().await.unwrap();
        let mut s = TcpStream::connect(sim.api_addr()).await.unwrap();
        let send = |w: &[&str]| sentence(&w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        s.write_all(&send(&["/interface/print"])).await.unwrap();
        assert_eq!(
            read_sentence(&mut s).await.unwrap().unwrap(),
            ["!fatal", "not logged in"]
        );
        let mut s = TcpStream::connect(sim.api_addr()).await.unwrap();
        s.write_all(&send(&["/login", "=name=pantau", "=password=nope", ".tag=1"]))
            .await
            .unwrap();
        let trap = read_sentence(&mut s).await.unwrap().unwrap();
        assert_eq!(trap[0], "!trap");
        assert_eq!(read_sentence(&mut s).await.unwrap().unwrap(), ["!done", ".tag=1"]);
        s.write_all(&send(&["/login", "=name=pantau", "=password=ros-secret-1", ".tag=2"]))
            .await
            .unwrap();
        assert_eq!(read_sentence(&mut s).await.unwrap().unwrap(), ["!done", ".tag=2"]);
        s.write_all(&send(&[
            "/ip/route/print",
            "?dst-address=0.0.0.0/0",
            "=.proplist=gateway",
            ".tag=3",
        ]))
        .await
        .unwrap();
        assert_eq!(
            read_sentence(&mut s).await.unwrap().unwrap(),
            ["!re", "=gateway=192.0.2.1", ".tag=3"]
        );
        assert_eq!(
            read_sentence(&mut s).await.unwrap().unwrap(),
            ["!re", "=gateway=pppoe-out1", ".tag=3"]
        );
        assert_eq!(read_sentence(&mut s).await.unwrap().unwrap(), ["!done", ".tag=3"]);
        s.write_all(&send(&["/nope/print", ".tag=4"])).await.unwrap();
        assert_eq!(read_sentence(&mut s).await.unwrap().unwrap()[0], "!trap");
        assert_eq!(read_sentence(&mut s).await.unwrap().unwrap(), ["!done", ".tag=4"]);
    }
}
