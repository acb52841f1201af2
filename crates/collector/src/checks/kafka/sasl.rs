//! SASL authentication of a Kafka connection: a `SaslHandshake` (v1) naming
//! the mechanism, then `SaslAuthenticate` (v1) requests carrying the
//! exchange — PLAIN (RFC 4616) or SCRAM-SHA-256/512 (RFC 5802, 7677).
//!
//! SCRAM is written here on RustCrypto's `hmac` and `sha2`: the maintained
//! SASL crate of the field, `rsasl`, cannot be resolved any more (every
//! release of its dependency `core2` is yanked from crates.io). Every answer
//! of the broker is untrusted: a server nonce that does not extend ours, an
//! iteration count outside `1..=`[`MAX_ITERATIONS`], a salt that is not
//! base64 or a server signature that does not match is an error, never a
//! panic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use pantau_config::{KafkaSasl, SaslMechanism};

use super::client::{Conn, KafkaError};

/// Protocol versions: both non-flexible, so their answers have header v0.
const HANDSHAKE_VERSION: i16 = 1;
const AUTHENTICATE_VERSION: i16 = 1;
/// Most PBKDF2 iterations a broker may ask for (Kafka's default is 4096):
/// more would let a hostile broker burn the collector's CPU.
pub const MAX_ITERATIONS: u32 = 100_000;
/// Longest broker text shown in a result.
const MAX_SHOWN: usize = 200;

/// `text` cut to [`MAX_SHOWN`] characters, control characters replaced.
fn shown(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .chars()
        .take(MAX_SHOWN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn refused(address: &str, why: impl Into<String>) -> KafkaError {
    KafkaError::Sasl {
        address: address.to_owned(),
        why: why.into(),
    }
}

/// A broker that drops the connection in the middle of the exchange refused us.
fn during(address: &str, e: KafkaError) -> KafkaError {
    match e {
        KafkaError::Io { source, .. } => refused(
            address,
            format!("the broker ended the connection during SASL authentication ({source})"),
        ),
        other => other,
    }
}

/// Authenticates `conn` with `sasl`'s mechanism and credentials.
pub async fn authenticate(conn: &mut Conn, sasl: &KafkaSasl) -> Result<(), KafkaError> {
    let address = conn.address().to_owned();
    let req = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(sasl.mechanism.as_str()));
    let resp = conn
        .send(&req, HANDSHAKE_VERSION)
        .await
        .map_err(|e| during(&address, e))?;
    if resp.error_code != 0 {
        let offered: Vec<String> = resp.mechanisms.iter().take(16).map(|m| shown(m.as_bytes())).collect();
        let e = KafkaError::from_code(resp.error_code, None)
            .unwrap_or_else(|| refused(&address, format!("error {}", resp.error_code)));
        return Err(match e {
            KafkaError::Auth { code, name } => KafkaError::Auth {
                code,
                name: format!(
                    "{name}: {} is not enabled; the broker offers [{}]",
                    sasl.mechanism.as_str(),
                    offered.join(", ")
                ),
            },
            other => other,
        });
    }
    match sasl.mechanism {
        SaslMechanism::Plain => {
            let mut token = Vec::with_capacity(sasl.username.len() + sasl.password.len() + 2);
            token.push(0);
            token.extend_from_slice(sasl.username.as_bytes());
            token.push(0);
            token.extend_from_slice(sasl.password.as_bytes());
            step(conn, token).await?;
            Ok(())
        }
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            let mut scram = Scram::new(sasl, &random_nonce());
            let first = step(conn, scram.client_first().into_bytes()).await?;
            let last = scram.client_final(&first).map_err(|why| refused(&address, why))?;
            let verdict = step(conn, last.into_bytes()).await?;
            scram.verify_server(&verdict).map_err(|why| refused(&address, why))
        }
    }
}

/// One `SaslAuthenticate` round: sends `bytes`, answers the server's bytes.
async fn step(conn: &mut Conn, bytes: Vec<u8>) -> Result<Bytes, KafkaError> {
    let address = conn.address().to_owned();
    let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes));
    let resp = conn
        .send(&req, AUTHENTICATE_VERSION)
        .await
        .map_err(|e| during(&address, e))?;
    if resp.error_code != 0 {
        let message = resp
            .error_message
            .as_ref()
            .map(|m| shown(m.as_bytes()))
            .unwrap_or_default();
        return Err(match KafkaError::from_code(resp.error_code, None) {
            Some(KafkaError::Auth { code, name }) => KafkaError::Auth {
                code,
                name: if message.is_empty() {
                    name
                } else {
                    format!("{name}: {message}")
                },
            },
            Some(other) => other,
            None => refused(&address, format!("error {}", resp.error_code)),
        });
    }
    Ok(resp.auth_bytes)
}

/// 24 random bytes, base64: a client nonce.
fn random_nonce() -> String {
    B64.encode(rand::random::<[u8; 24]>())
}

/// The client side of one SCRAM exchange.
pub struct Scram {
    sha512: bool,
    password: String,
    first_bare: String,
    nonce: String,
    /// Set by [`Scram::client_final`]: the server signature expected.
    server_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for Scram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scram")
            .field("sha512", &self.sha512)
            .field("first_bare", &self.first_bare)
            .finish_non_exhaustive()
    }
}

/// `name` with `=` and `,` escaped (RFC 5802 `saslname`).
fn sasl_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

impl Scram {
    /// An exchange for `sasl` (a SCRAM mechanism) with client nonce `nonce`.
    pub fn new(sasl: &KafkaSasl, nonce: &str) -> Self {
        // SASLprep (RFC 4013) when the password allows it, as it is given otherwise.
        let password =
            stringprep::saslprep(&sasl.password).map_or_else(|_| sasl.password.clone(), std::borrow::Cow::into_owned);
        Self {
            sha512: sasl.mechanism == SaslMechanism::ScramSha512,
            password,
            first_bare: format!("n={},r={nonce}", sasl_name(&sasl.username)),
            nonce: nonce.to_owned(),
            server_signature: None,
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        if self.sha512 {
            let mut m = hmac::Hmac::<sha2::Sha512>::new_from_slice(key).expect("HMAC takes keys of any length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        } else {
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }

    fn hash(&self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        if self.sha512 {
            sha2::Sha512::digest(data).to_vec()
        } else {
            sha2::Sha256::digest(data).to_vec()
        }
    }

    /// PBKDF2 with the mechanism's HMAC, one block (RFC 5802 `Hi`).
    fn salted_password(&self, salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut block = salt.to_vec();
        block.extend_from_slice(&1u32.to_be_bytes());
        let mut u = self.hmac(self.password.as_bytes(), &block);
        let mut out = u.clone();
        for _ in 1..iterations {
            u = self.hmac(self.password.as_bytes(), &u);
            for (o, x) in out.iter_mut().zip(&u) {
                *o ^= x;
            }
        }
        out
    }

    /// The client-final message answering `server_first`, or why that
    /// answer cannot be accepted.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<String, String> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| format!("the server-first message is not UTF-8: `{}`", shown(server_first)))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the broker refused the exchange: {}", shown(e.as_bytes())));
        }
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("m", _)) => return Err("the broker asks for a SCRAM extension (m=) we do not speak".into()),
                _ => {}
            }
        }
        let bad = |what: &str| format!("the server-first message `{}` {what}", shown(server_first));
        let nonce = nonce.ok_or_else(|| bad("has no nonce (r=)"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(bad("has a nonce that does not extend ours"));
        }
        if !nonce.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(bad("has a nonce with characters SCRAM does not allow"));
        }
        let salt = B64
            .decode(salt.ok_or_else(|| bad("has no salt (s=)"))?)
            .map_err(|_| bad("has a salt that is not base64"))?;
        if salt.is_empty() {
            return Err(bad("has an empty salt"));
        }
        let iterations: u32 = iterations
            .ok_or_else(|| bad("has no iteration count (i=)"))?
            .parse()
            .map_err(|_| bad("has an iteration count that is not a number"))?;
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(bad(&format!(
                "asks for {iterations} iterations (1 to {MAX_ITERATIONS} accepted)"
            )));
        }
        let salted = self.salted_password(&salt, iterations);
        let client_key = self.hmac(&salted, b"Client Key");
        let stored_key = self.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.first_bare);
        let signature = self.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        let server_key = self.hmac(&salted, b"Server Key");
        self.server_signature = Some(self.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final message: the broker proves it knows the password too.
    pub fn verify_server(&self, server_final: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(server_final);
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the broker refused the credentials: {}", shown(e.as_bytes())));
        }
        let Some(v) = text.strip_prefix("v=") else {
            return Err(format!(
                "the server-final message `{}` has no verifier (v=)",
                shown(server_final)
            ));
        };
        let v = v.split(',').next().unwrap_or_default();
        let got = B64
            .decode(v)
            .map_err(|_| format!("the server-final verifier `{}` is not base64", shown(v.as_bytes())))?;
        match &self.server_signature {
            Some(want) if *want == got => Ok(()),
            Some(_) => Err("the broker's server signature does not match: it does not know this password".into()),
            None => Err("a server-final message before the client-final one".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(mechanism: SaslMechanism, user: &str, password: &str) -> KafkaSasl {
        KafkaSasl {
            mechanism,
            username: user.into(),
            password: password.into(),
        }
    }

    /// RFC 7677 section 3's SCRAM-SHA-256 example, byte for byte.
    #[test]
    fn rfc_7677_example() {
        let mut s = Scram::new(
            &creds(SaslMechanism::ScramSha256, "user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(s.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let last = s
            .client_final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            last,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(
            s.verify_server(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_err()
        );
        assert!(
            s.verify_server(b"e=invalid-proof")
                .unwrap_err()
                .contains("invalid-proof")
        );
    }

    #[test]
    fn names_are_escaped() {
        let s = Scram::new(&creds(SaslMechanism::ScramSha512, "a=b,c", "p"), "n0nce");
        assert_eq!(s.client_first(), "n,,n=a=3Db=2Cc,r=n0nce");
    }

    #[test]
    fn hostile_server_first_messages_are_errors() {
        let huge = format!("r=abcX,s={},i=0", "A".repeat(1_000_000));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"r=zzzX,s=c2FsdA==,i=4096".to_vec(), "does not extend"),
            (b"r=abc,s=c2FsdA==,i=4096".to_vec(), "does not extend"),
            (b"s=c2FsdA==,i=4096".to_vec(), "no nonce"),
            (b"r=abcX,i=4096".to_vec(), "no salt"),
            (b"r=abcX,s=!!!,i=4096".to_vec(), "not base64"),
            (b"r=abcX,s=,i=4096".to_vec(), "empty salt"),
            (b"r=abcX,s=c2FsdA==".to_vec(), "no iteration"),
            (b"r=abcX,s=c2FsdA==,i=-1".to_vec(), "not a number"),
            (b"r=abcX,s=c2FsdA==,i=0".to_vec(), "iterations"),
            (b"r=abcX,s=c2FsdA==,i=4294967295".to_vec(), "iterations"),
            (b"r=abcX,s=c2FsdA==,i=99999999999999999999".to_vec(), "not a number"),
            (b"r=abcX,s=c2FsdA==,i=4096,m=ext".to_vec(), "extension"),
            (b"e=unknown-user".to_vec(), "unknown-user"),
            (vec![0xff, 0xfe, 0x00], "not UTF-8"),
            (Vec::new(), "no nonce"),
            (huge.into_bytes(), "iterations"),
        ];
        for (msg, want) in cases {
            let mut s = Scram::new(&creds(SaslMechanism::ScramSha256, "u", "p"), "abc");
            let e = s.client_final(&msg).unwrap_err();
            assert!(e.contains(want), "{}: {e}", shown(&msg));
            assert!(e.len() < 600, "{e}");
        }
    }

    #[test]
    fn sha512_and_sha256_differ() {
        let mut a = Scram::new(&creds(SaslMechanism::ScramSha256, "u", "p"), "abc");
        let mut b = Scram::new(&creds(SaslMechanism::ScramSha512, "u", "p"), "abc");
        let first = b"r=abcX,s=c2FsdA==,i=16";
        let (x, y) = (a.client_final(first).unwrap(), b.client_final(first).unwrap());
        assert_ne!(x, y);
        assert!(y.len() > x.len(), "a 64-byte proof is longer");
    }
}
