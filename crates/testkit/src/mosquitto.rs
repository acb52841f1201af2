//! [`Mosquitto`]: Debian's MQTT broker (`mosquitto`) on a free loopback
//! port with a configuration file in a temporary directory, no persistence,
//! and either anonymous access or a password file made with
//! `mosquitto_passwd` for one user ([`MQTT_USER`], [`MQTT_PASSWORD`]).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::{TestkitError, binary, free_port};

/// The user of a [`Mosquitto::start_with_password`] broker.
pub const MQTT_USER: &str = "pantau-probe";
/// Its password.
pub const MQTT_PASSWORD: &str = "pantau-mqtt-test-pw";

/// How long start-up may take.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// A running `mosquitto`, killed when dropped.
pub struct Mosquitto {
    _dir: TempDir,
    port: u16,
    _child: Child,
}

impl std::fmt::Debug for Mosquitto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mosquitto")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Mosquitto {
    /// A broker anyone may use without a password.
    pub async fn start() -> Result<Self, TestkitError> {
        Self::launch(false).await
    }

    /// A broker that wants [`MQTT_USER`] with [`MQTT_PASSWORD`] and refuses
    /// everyone else.
    pub async fn start_with_password() -> Result<Self, TestkitError> {
        Self::launch(true).await
    }

    async fn launch(password: bool) -> Result<Self, TestkitError> {
        let bin = binary::require("mosquitto", "mosquitto")?;
        let dir = tempfile::Builder::new()
            .prefix("pantau-mosquitto-")
            .tempdir()
            .map_err(|e| TestkitError::io("create a temporary directory in", std::env::temp_dir(), e))?;
        let port = free_port();
        let mut conf = format!("listener {port} 127.0.0.1\npersistence false\nlog_dest stderr\n");
        if crate::postgres::effective_uid_is_root() {
            // As root it would switch to the `mosquitto` user, which cannot
            // read the temporary directory.
            conf.push_str("user root\n");
        }
        if password {
            let tool = binary::require("mosquitto_passwd", "mosquitto")?;
            let file = dir.path().join("passwd");
            let mut cmd = Command::new(&tool);
            cmd.args(["-b", "-c"]).arg(&file).args([MQTT_USER, MQTT_PASSWORD]);
            binary::run(cmd).await?;
            conf.push_str("allow_anonymous false\npassword_file ");
            conf.push_str(&file.display().to_string());
            conf.push('\n');
        } else {
            conf.push_str("allow_anonymous true\n");
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).map_err(|e| TestkitError::io("write", conf_path.clone(), e))?;
        let log = dir.path().join("log");
        let out = std::fs::File::create(&log).map_err(|e| TestkitError::io("create", log.clone(), e))?;
        let mut child = Some(
            Command::new(&bin)
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(out)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| TestkitError::io("start", bin.clone(), e))?,
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        binary::wait_until_ready("mosquitto", &mut child, &log, READY_WITHIN, || connack(addr)).await?;
        Ok(Self {
            _dir: dir,
            port,
            _child: child.expect("running once ready"),
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// Whether `addr` answers an MQTT 3.1.1 CONNECT with a CONNACK (accepted or not).
async fn connack(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await?;
        // CONNECT: "MQTT", level 4, clean session, keep-alive 10 s, client id "ready".
        s.write_all(&[
            0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10, 0, 5, b'r', b'e', b'a', b'd', b'y',
        ])
        .await?;
        let mut buf = [0_u8; 4];
        s.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf[0] == 0x20)
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Ok(true))
    )
}
