//! The driver a router is polled with (`driver: snmp | routeros |
//! routeros_rest`): each reads one [`Reading`], which the same tracker turns
//! into samples and events, so counter resets, reboots, interface up/down
//! and the breaker behave alike whatever the router speaks.

use std::time::Duration;

use pantau_config::{RouterConfig, RouterDriver};

use super::reading::Reading;
use super::routeros::{self, api, rest};
use super::snmp;

/// Why a poll failed, by driver.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Snmp(#[from] snmp::PollError),
    #[error(transparent)]
    RouterOs(#[from] routeros::Error),
}

/// A connected driver; dropped and made again after a failed poll.
pub enum Driver {
    Snmp(snmp::Session),
    Api(Box<api::Session>),
    Rest(rest::Client),
}

impl Driver {
    /// Connects (and logs in, for the RouterOS API) as `r` says.
    pub async fn connect(r: &RouterConfig, timeout: Duration) -> Result<Self, PollError> {
        Ok(match r.driver {
            RouterDriver::Snmp => Self::Snmp(snmp::Session::connect(r, timeout).await?),
            RouterDriver::Routeros => Self::Api(Box::new(api::Session::connect(r, timeout).await?)),
            RouterDriver::RouterosRest => Self::Rest(rest::Client::new(r, timeout)?),
        })
    }

    /// Reads everything once.
    pub async fn poll(&mut self) -> Result<Reading, PollError> {
        Ok(match self {
            Self::Snmp(s) => s.poll().await?,
            Self::Api(s) => s.poll().await?,
            Self::Rest(c) => c.poll().await?,
        })
    }
}

/// How messages name what `driver` speaks, and the `reason` of `target_down`.
pub fn protocol(driver: RouterDriver) -> (&'static str, &'static str) {
    match driver {
        RouterDriver::Snmp => ("SNMP", "snmp"),
        RouterDriver::Routeros => ("the RouterOS API", "routeros"),
        RouterDriver::RouterosRest => ("the RouterOS REST API", "routeros_rest"),
    }
}
