//! Real servers for Pantau's tests: `pantau-testkit` starts the actual
//! `nats-server` and PostgreSQL binaries on free loopback ports, each in its
//! own temporary directory, and stops them when the handle is dropped.
//!
//! Layout:
//! - [`Nats`]: `nats-server` with JetStream, ready once `/healthz` answers
//!   200; it can be stopped and started again on the same port with the same
//!   store, to test a restart in the middle of a test.
//! - [`NatsCluster`]: N `nats-server`s routed into one JetStream cluster, each
//!   with its own store; one node can be killed and started again, and
//!   [`NatsCluster::urls`] gives the comma-separated seeds for `nats.url`.
//! - [`Postgres`]: `initdb` + `pg_ctl start` on 127.0.0.1 (as the `postgres`
//!   user when the tests run as root), stopped with `pg_ctl stop -m immediate`.
//!   [`Postgres::create_login`] adds a role that must give its password.
//! - [`Dnsmasq`]: `dnsmasq` answering only the records a test gives it.
//! - [`Alertmanager`]: Debian's `prometheus-alertmanager` with a given
//!   configuration, HA gossip off, ready once `/-/ready` answers 200.
//! - [`Snmpd`]: Debian's `snmpd` on a free UDP port with a v2c community and
//!   an SNMPv3 authPriv (SHA/AES) user, serving this machine's interfaces.
//! - [`RouterOsSim`]: a MikroTik RouterOS simulator speaking the API word
//!   protocol (and optionally the v7 REST API) from one state a test changes:
//!   counters, counter resets, reboots, link state, unreachability.
//! - [`SnmpSim`]: PyPI's `snmpsim` serving recorded device data (a
//!   MikroTik-like `.snmprec` under `data/snmpsim`); missing, it is an error
//!   naming the PyPI package.
//! - [`ChromeDriver`]: Debian's `chromedriver` (`chromium-driver`) on a free
//!   loopback port, with capabilities for a headless Debian `chromium`.
//! - [`Redis`]: Debian's `redis-server` on a free loopback port with a
//!   password ([`REDIS_PASSWORD`]) and no persistence.
//! - [`Mariadb`]: Debian's `mariadb-server` (`mysql_install_db` into a
//!   temporary directory, `mariadbd` on a free loopback port, grant tables on)
//!   with a password user ([`MARIADB_USER`]).
//! - [`Sshd`]: Debian's `sshd` (`openssh-server`) on a free loopback port
//!   with a host key made for it, for banner checks.
//! - [`Kafka`]: crates.io's `tansu`, a Kafka-protocol broker, with in-memory
//!   storage; ready once it answers `ApiVersions`; stoppable for outages.
//!   Missing, it is an error naming `cargo install --locked tansu`. With
//!   [`KafkaOptions`] it requires SASL (SCRAM) and/or TLS (through [`Stunnel`]).
//! - [`Stunnel`]: Debian's `stunnel4` terminating TLS in front of a
//!   plaintext server.
//! - [`HttpProxy`] and [`SocksProxy`]: Debian's `tinyproxy` (HTTP forward
//!   proxy and CONNECT) and `danted` (`dante-server`, SOCKS5), on free
//!   loopback ports, stoppable for outages.
//! - [`Mosquitto`]: Debian's `mosquitto` MQTT broker on a free loopback port,
//!   anonymous or with a `mosquitto_passwd` user ([`MQTT_USER`]).
//! - [`Smtp`]: PyPI's aiosmtpd (in `.venv-smtp`) on a free loopback port,
//!   plain, offering STARTTLS, or implicit TLS ([`SmtpTls`]).
//! - [`Dovecot`]: Debian's `dovecot-imapd`/`dovecot-pop3d` with a temporary
//!   configuration: IMAP, IMAPS, POP3 and POP3S on free loopback ports.
//! - `process`: the spawn-and-wait shape of the restartable starters (a log
//!   every run appends to, a readiness probe, a retry on fresh ports).
//! - [`free_port`]: a loopback port nobody listens on right now.
//! - [`TestkitError`]: why a server could not start. A missing binary is an
//!   error naming the Debian package to install, never a silent skip.
//!
//! Everything that waits is async (tokio), so a test can restart a server
//! while its other tasks keep running.

mod alertmanager;
mod binary;
mod chromedriver;
mod dnsmasq;
mod dovecot;
mod error;
mod kafka;
mod mariadb;
mod mosquitto;
mod nats;
mod nats_cluster;
mod postgres;
mod process;
mod proxy;
mod redis;
mod routeros;
mod smtp;
mod snmpd;
mod snmpsim;
mod sshd;
mod stunnel;
mod tls;

pub use alertmanager::Alertmanager;
pub use chromedriver::ChromeDriver;
pub use dnsmasq::{Dnsmasq, Record as DnsRecord};
pub use dovecot::Dovecot;
pub use error::TestkitError;
pub use kafka::{Kafka, KafkaOptions};
pub use mariadb::{MARIADB_PASSWORD, MARIADB_USER, Mariadb};
pub use mosquitto::{MQTT_PASSWORD, MQTT_USER, Mosquitto};
pub use nats::Nats;
pub use nats_cluster::NatsCluster;
pub use postgres::Postgres;
pub use proxy::{HttpProxy, Proxy, SocksProxy};
pub use redis::{REDIS_PASSWORD, Redis};
pub use routeros::{ROUTEROS_PASSWORD, ROUTEROS_USER, RouterOsSim, SimInterface, SimState, format_uptime};
pub use smtp::{Smtp, SmtpTls};
pub use snmpd::{
    COMMUNITY as SNMP_COMMUNITY, LINK_COMMUNITY as SNMP_LINK_COMMUNITY, Snmpd, V3_AUTH_PASSWORD, V3_PRIV_PASSWORD,
    V3_USER, default_route_link, free_udp_port,
};
pub use snmpsim::{
    BAD_TYPES_COMMUNITY, BROCADE_IPROUTE_COMMUNITY, ISP_ADDRESSES_COMMUNITY, MIKROTIK_COMMUNITY,
    MIKROTIK_IPCIDR_COMMUNITY, SnmpSim, snmpsim_data_dir,
};
pub use sshd::Sshd;
pub use stunnel::Stunnel;
pub use tls::TlsFiles;

/// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads
/// the port the kernel chose, and releases it. A port is never handed out
/// twice in one process (the kernel may offer a just-released port again),
/// so the ports of one test never collide with each other.
///
/// # Panics
/// If the loopback interface cannot be bound at all.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Option<std::collections::HashSet<u16>>> = std::sync::Mutex::new(None);
    loop {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("cannot bind a loopback port");
        let port = listener.local_addr().expect("a bound listener has an address").port();
        let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if given.get_or_insert_with(Default::default).insert(port) {
            return port;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_never_repeated() {
        let ports: std::collections::HashSet<u16> = (0..300).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 300);
    }

    #[test]
    fn free_port_is_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }

    #[test]
    fn a_missing_binary_names_the_package() {
        let e = TestkitError::MissingBinary {
            binary: "nats-server",
            looked: "on PATH".to_owned(),
            package: "nats-server",
        };
        assert_eq!(
            e.to_string(),
            "nats-server not found on PATH: install the Debian package nats-server \
             (apt-get install nats-server), or run make test, which installs it"
        );
    }
}
