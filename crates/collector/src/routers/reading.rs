//! What one poll of one router read, whatever the driver (SNMP, the
//! RouterOS API or RouterOS REST): the input of [`super::track::Tracker`].

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::counters::Width;

/// One interface as one poll read it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IfReading {
    pub index: u32,
    /// `ifName`, else `ifDescr`.
    pub name: String,
    pub descr: String,
    pub alias: String,
    pub if_type: i32,
    pub oper_up: bool,
    pub admin_up: bool,
    /// `ifHighSpeed` × 10^6 when set, else `ifSpeed`; 0 when unknown.
    pub speed_bps: u64,
    pub width: Option<Width>,
    pub in_octets: u64,
    pub out_octets: u64,
    pub in_ucast: u64,
    pub out_ucast: u64,
    pub in_errors: u64,
    pub out_errors: u64,
    pub in_discards: u64,
    pub out_discards: u64,
    /// `ifCounterDiscontinuityTime` (sysUpTime when the counters last
    /// became discontinuous), when the agent has it.
    pub discontinuity: Option<u32>,
    /// The operator's comment (RouterOS `comment`); SNMP has it in `alias`.
    pub comment: String,
    /// PPPoE client interfaces: the PPPoE user name (an ISP hint).
    pub pppoe_user: String,
    /// The interface's addresses in CIDR form, when the driver reads them.
    pub addresses: Vec<String>,
}

/// One poll of one router.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub at: SystemTime,
    pub sys_name: String,
    pub sys_descr: String,
    /// Hundredths of a second, the largest uptime source.
    pub uptime_centis: u64,
    pub interfaces: BTreeMap<u32, IfReading>,
    pub default_route_if_indexes: Vec<u32>,
    /// Which table the default routes came from; empty when none had one.
    pub route_table: &'static str,
}
