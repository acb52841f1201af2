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
    /// Values the agent sent with another type than their MIB says (SNMP
    /// only): left out of the reading, counted and logged by the poller.
    pub bad_values: Vec<BadValue>,
}

/// A value of the wrong type or out of range, or a row missing a value it
/// cannot do without; never reinterpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    /// The MIB object: `ifOperStatus`, `ifHCInOctets`, …
    pub object: &'static str,
    /// The instance's OID.
    pub oid: String,
    /// What the MIB says it is: `INTEGER 1..7`, `Counter64`, …
    pub want: String,
    /// What the agent sent, with at most 100 bytes of its content.
    pub got: String,
}
