//! A RouterOS API client: one TCP (or API-SSL) connection, the post-6.43
//! plaintext `/login`, then tagged commands whose replies are `!re` rows
//! ended by `!done`; `!trap` is a failed command, `!fatal` a closed session.

use std::time::{Duration, SystemTime};

use bytes::{Buf, BytesMut};
use pantau_config::RouterConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::word::{self, WordError};
use super::{Error, INTERFACE_PROPS, Menus, Row};
use crate::routers::reading::Reading;

/// Most bytes buffered for one reply sentence.
const MAX_SENTENCE: usize = 32 << 20;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A logged-in API session.
pub struct Session {
    io: Box<dyn Io>,
    buf: BytesMut,
    tag: u64,
    timeout: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// What a command's reply held.
#[derive(Debug, Default)]
struct Reply {
    rows: Vec<Row>,
    /// Attributes of `!done` (e.g. `ret`).
    done: Row,
}

impl Session {
    /// Connects to `r` (TLS when `r.tls`) and logs in; each step bounded by `timeout`.
    pub async fn connect(r: &RouterConfig, timeout: Duration) -> Result<Self, Error> {
        let (host, port) = r.host_port().map_err(|why| Error::Address {
            address: r.address.clone(),
            why,
        })?;
        let address = format!("{host}:{port}");
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| Error::Timeout(format!("connecting to {address}")))?
            .map_err(|source| Error::Connect {
                address: address.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if r.tls {
            let connector = tokio_rustls::TlsConnector::from(super::tls::client_config(r)?);
            let name = ServerName::try_from(host.clone())
                .map_err(|e| Error::Tls(format!("`{host}` is not a TLS server name: {e}")))?;
            let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| Error::Timeout(format!("the TLS handshake with {address}")))?
                .map_err(|e| Error::Tls(format!("handshake with {address}: {e}")))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let mut s = Self {
            io,
            buf: BytesMut::with_capacity(16 * 1024),
            tag: 0,
            timeout,
        };
        s.login(
            r.username.as_deref().unwrap_or_default(),
            r.password.as_deref().unwrap_or_default(),
        )
        .await?;
        Ok(s)
    }

    async fn login(&mut self, user: &str, password: &str) -> Result<(), Error> {
        let name = format!("=name={user}");
        let pass = format!("=password={password}");
        match self.run(&["/login", &name, &pass]).await {
            Ok(reply) if reply.done.contains_key("ret") => Err(Error::Login {
                user: user.to_owned(),
                message: "the router asks for the challenge login of RouterOS before 6.43, which is not supported; \
                          upgrade RouterOS"
                    .to_owned(),
            }),
            Ok(_) => Ok(()),
            Err(Error::Trap { message, .. }) => Err(Error::Login {
                user: user.to_owned(),
                message,
            }),
            Err(e) => Err(e),
        }
    }

    /// Runs `words` (a command and its attributes/queries) and returns its rows.
    pub async fn command(&mut self, words: &[&str]) -> Result<Vec<Row>, Error> {
        self.run(words).await.map(|r| r.rows)
    }

    async fn run(&mut self, words: &[&str]) -> Result<Reply, Error> {
        let command = words.first().copied().unwrap_or_default().to_owned();
        let limit = self.timeout;
        tokio::time::timeout(limit, self.exchange(&command, words))
            .await
            .map_err(|_| Error::Timeout(format!("`{command}`")))?
    }

    async fn exchange(&mut self, command: &str, words: &[&str]) -> Result<Reply, Error> {
        self.tag += 1;
        let tag = self.tag.to_string();
        let tag_word = format!(".tag={tag}");
        let mut all: Vec<&str> = words.to_vec();
        all.push(&tag_word);
        self.io.write_all(&word::encode_sentence(&all)).await?;
        self.io.flush().await?;
        let mut reply = Reply::default();
        let mut trap: Option<String> = None;
        loop {
            // A router that closes the session right after a `!trap` (some
            // do after a refused login) still gets its message reported.
            let as_trap = |trap: Option<String>, e: Error| match trap {
                Some(message) => Error::Trap {
                    command: command.to_owned(),
                    message,
                },
                None => e,
            };
            let sentence = match self.read_sentence().await {
                Ok(s) => s,
                Err(e) => return Err(as_trap(trap, e)),
            };
            let Some((kind, rest)) = sentence.split_first() else {
                continue;
            };
            if kind == "!fatal" {
                return Err(as_trap(trap, Error::Fatal(rest.join(" "))));
            }
            let attrs = attributes(rest);
            match attrs.get(".tag") {
                Some(t) if *t == tag => {}
                other => {
                    return Err(Error::Protocol(format!(
                        "a reply to `{command}` (tag {tag}) carried tag {other:?}"
                    )));
                }
            }
            match kind.as_str() {
                "!re" => reply
                    .rows
                    .push(attrs.into_iter().filter(|(k, _)| k != ".tag").collect()),
                "!trap" => {
                    trap.get_or_insert_with(|| attrs.get("message").cloned().unwrap_or_else(|| "no message".into()));
                }
                "!done" => {
                    if let Some(message) = trap {
                        return Err(Error::Trap {
                            command: command.to_owned(),
                            message,
                        });
                    }
                    reply.done = attrs;
                    return Ok(reply);
                }
                "!empty" => {}
                other => return Err(Error::Protocol(format!("unknown reply word `{other}` to `{command}`"))),
            }
        }
    }

    async fn read_sentence(&mut self) -> Result<Vec<String>, Error> {
        loop {
            match word::decode_sentence(&self.buf) {
                Ok(Some((words, used))) => {
                    self.buf.advance(used);
                    return Ok(words);
                }
                Ok(None) => {}
                Err(e @ (WordError::Control(_) | WordError::TooLong(_))) => return Err(Error::Protocol(e.to_string())),
            }
            if self.buf.len() > MAX_SENTENCE {
                return Err(Error::Protocol(format!(
                    "a reply sentence is longer than {MAX_SENTENCE} bytes"
                )));
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the router closed the connection",
                )));
            }
        }
    }

    /// Reads every menu of one poll.
    pub async fn poll(&mut self) -> Result<Reading, Error> {
        let at = SystemTime::now();
        let identity = self.command(&["/system/identity/print"]).await?.into_iter().next();
        let resource = self
            .command(&["/system/resource/print", "=.proplist=uptime,version,board-name"])
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let props = format!("=.proplist={INTERFACE_PROPS}");
        let interfaces = self.command(&["/interface/print", &props]).await?;
        let default_routes = self
            .command(&[
                "/ip/route/print",
                "=.proplist=dst-address,gateway,immediate-gw,gateway-status,active,disabled",
                "?dst-address=0.0.0.0/0",
            ])
            .await?;
        let addresses = self
            .command(&["/ip/address/print", "=.proplist=address,interface,disabled,invalid"])
            .await?;
        // Without the PPP package the menu is missing: no PPPoE hints then.
        let pppoe_clients = match self
            .command(&["/interface/pppoe-client/print", "=.proplist=name,user"])
            .await
        {
            Ok(rows) => rows,
            Err(Error::Trap { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        super::reading(
            at,
            Menus {
                identity,
                resource,
                interfaces,
                default_routes,
                addresses,
                pppoe_clients,
            },
        )
    }
}

/// `=key=value` words (and `.tag=N`) → a row; the value may hold `=`.
fn attributes(words: &[String]) -> Row {
    words
        .iter()
        .filter_map(|w| {
            if let Some(rest) = w.strip_prefix('=') {
                let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                Some((k.to_owned(), v.to_owned()))
            } else {
                let rest = w.strip_prefix(".tag=")?;
                Some((".tag".to_owned(), rest.to_owned()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_words() {
        let w: Vec<String> = ["=name=ether1", "=comment=a=b", "=empty=", ".tag=3", "junk"]
            .map(String::from)
            .to_vec();
        let a = attributes(&w);
        assert_eq!(a["name"], "ether1");
        assert_eq!(a["comment"], "a=b");
        assert_eq!(a["empty"], "");
        assert_eq!(a[".tag"], "3");
        assert_eq!(a.len(), 4);
    }
}
