//! Email over SMTP with lettre: STARTTLS (587), TLS (465) or plain, with
//! optional authentication. The subject is the message's first line; the
//! body is the whole text. The idempotency key goes in `Message-ID`.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pantau_config::{ChannelConfig, SmtpTls};

use super::{Channel, Outcome, Outgoing};

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    to: Vec<lettre::message::Mailbox>,
    domain: String,
}

impl Email {
    pub fn new(c: &ChannelConfig, timeout: Duration) -> Result<Self, String> {
        let smtp = c.smtp.as_ref().ok_or("smtp is required")?;
        let tls = || -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(smtp.host.clone());
            if let Some(path) = &smtp.ca_file {
                let pem = std::fs::read(path).map_err(|e| format!("smtp.ca_file `{path}`: {e}"))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| format!("smtp.ca_file `{path}`: {e}"))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| format!("smtp TLS settings: {e}"))
        };
        // `builder_dangerous` only means "no TLS unless told": `.tls(..)` requires it.
        let builder = match smtp.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                .port(smtp.port.unwrap_or(587))
                .tls(Tls::Required(tls()?)),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                .port(smtp.port.unwrap_or(465))
                .tls(Tls::Wrapper(tls()?)),
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host).port(smtp.port.unwrap_or(25))
            }
        };
        let builder = match (&smtp.username, &smtp.password) {
            (Some(u), Some(p)) => builder.credentials(Credentials::new(u.clone(), p.clone())),
            _ => builder,
        };
        let from: lettre::message::Mailbox = smtp.from.parse().map_err(|e| format!("smtp.from: {e}"))?;
        let to =
            c.to.iter()
                .map(|a| a.parse().map_err(|e| format!("to `{a}`: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
        let domain = from.email.domain().to_owned();
        Ok(Self {
            transport: builder.timeout(Some(timeout)).build(),
            from,
            to,
            domain,
        })
    }
}

#[async_trait]
impl Channel for Email {
    async fn send(&self, out: Outgoing<'_>) -> Outcome {
        let subject: String = out
            .text
            .lines()
            .next()
            .unwrap_or("Pantau alert")
            .chars()
            .take(200)
            .collect();
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!("<{}@{}>", out.idempotency_key, self.domain)))
            .header(ContentType::TEXT_PLAIN);
        for t in &self.to {
            b = b.to(t.clone());
        }
        let msg = match b.body(out.text.to_owned()) {
            Ok(m) => m,
            Err(e) => return Outcome::permanent(0, format!("cannot build the message: {e}")),
        };
        match self.transport.send(msg).await {
            Ok(resp) => Outcome::ok(u16::from(resp.code())),
            Err(e) => {
                let code = e.status().map_or(0, u16::from);
                if e.is_permanent() {
                    Outcome::permanent(code, format!("SMTP: {e}"))
                } else {
                    Outcome::temporary(code, format!("SMTP: {e}"))
                }
            }
        }
    }
}
