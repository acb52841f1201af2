//! Tests of `collector.routers`: parsing, validation naming each key, ports, masking.

use super::*;

fn keys(c: &CollectorConfig) -> Vec<String> {
    router_problems(c).into_iter().map(|p| p.key).collect()
}

#[test]
fn addresses() {
    assert_eq!(split_address("10.0.0.1").unwrap(), ("10.0.0.1".into(), None));
    assert_eq!(split_address("10.0.0.1:1161").unwrap(), ("10.0.0.1".into(), Some(1161)));
    assert_eq!(split_address("router.lan").unwrap(), ("router.lan".into(), None));
    assert_eq!(split_address("[::1]:1161").unwrap(), ("::1".into(), Some(1161)));
    assert_eq!(split_address("::1").unwrap(), ("::1".into(), None));
    assert!(split_address("10.0.0.1:0").is_err());
    assert!(split_address("10.0.0.1:x").is_err());
    assert!(split_address("").is_err());
    assert!(split_address("udp://x").is_err());
}

#[test]
fn v2c_and_v3_need_their_credentials() {
    let mut c = CollectorConfig::default();
    let mut r = RouterConfig::new("r1", "127.0.0.1:1161");
    c.routers = vec![r.clone()];
    assert!(keys(&c).is_empty(), "{:?}", router_problems(&c));
    r.snmp.community = None;
    r.snmp.user = Some("u".into());
    c.routers = vec![r.clone()];
    assert_eq!(
        keys(&c),
        ["collector.routers[0].snmp.community", "collector.routers[0].snmp.user"]
    );
    let mut v3 = RouterConfig::new("r2", "h");
    v3.snmp = SnmpConfig {
        version: SnmpVersion::V3,
        user: Some("mon".into()),
        auth_protocol: Some(SnmpAuthProtocol::Sha),
        auth_password: Some("short".into()),
        priv_protocol: Some(SnmpPrivProtocol::Aes),
        priv_password: None,
        community: None,
    };
    c.routers = vec![v3.clone()];
    let p = router_problems(&c);
    assert_eq!(
        p.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(),
        [
            "collector.routers[0].snmp.auth_password",
            "collector.routers[0].snmp.priv_password"
        ]
    );
    assert!(p.iter().all(|p| !p.value.contains("short")), "a password leaked: {p:?}");
    v3.snmp.auth_password = Some("authpass123".into());
    v3.snmp.priv_password = Some("privpass123".into());
    c.routers = vec![v3];
    assert!(keys(&c).is_empty());
}

#[test]
fn routeros_drivers_keys_ports_and_masking() {
    let yaml = "
routers:
  - id: mt
    address: 192.0.2.1
    driver: routeros
    username: monitor
    password: rospass1
  - id: mts
    address: 192.0.2.1
    driver: routeros
    tls: true
    tls_verify: false
    username: monitor
    password: rospass2
  - id: rest
    address: 192.0.2.1
    driver: routeros_rest
    tls: true
    ca_file: /etc/pantau/mikrotik-ca.pem
    username: monitor
    password: rospass3
  - id: rest80
    address: 192.0.2.1:8080
    driver: routeros_rest
    username: monitor
    password: ''
";
    let mut c: CollectorConfig = serde_yaml::from_str(yaml).unwrap();
    assert!(router_problems(&c).is_empty(), "{:?}", router_problems(&c));
    let ports: Vec<u16> = c.routers.iter().map(|r| r.host_port().unwrap().1).collect();
    assert_eq!(ports, [8728, 8729, 443, 8080]);
    assert_eq!(c.routers[0].driver, RouterDriver::Routeros);
    assert!(c.routers[0].tls_verify && !c.routers[1].tls_verify);
    assert_eq!(RouterConfig::new("s", "h").host_port().unwrap().1, 161);
    let mut plain = c.routers[3].clone();
    plain.address = "h".into();
    assert_eq!(plain.host_port().unwrap().1, 80);
    c.mask();
    let out = serde_yaml::to_string(&c).unwrap();
    for s in ["rospass1", "rospass2", "rospass3"] {
        assert!(!out.contains(s), "{s} leaked:\n{out}");
    }
    assert!(out.contains("driver: routeros_rest"), "{out}");
    assert!(!out.contains("snmp:"), "no snmp section for RouterOS routers:\n{out}");
    let back: CollectorConfig = serde_yaml::from_str(&out).unwrap();
    assert!(!back.routers[1].tls_verify && back.routers[1].tls);

    let typo: Result<CollectorConfig, _> = serde_yaml::from_str("routers: [{id: x, address: h, driver: mikrotik}]");
    let e = typo.unwrap_err().to_string();
    assert!(e.contains("mikrotik") && e.contains("routeros_rest"), "{e}");
}

#[test]
fn routeros_validation_names_each_key() {
    let mut c = CollectorConfig::default();
    let mut missing = RouterConfig::routeros("a", "h", RouterDriver::Routeros, "", "x");
    missing.username = None;
    missing.password = None;
    missing.snmp.community = Some("public".into());
    missing.retries = Some(1);
    let mut verify = RouterConfig::routeros("b", "h", RouterDriver::RouterosRest, "u", "p");
    verify.tls_verify = false;
    let mut both = RouterConfig::routeros("c", "h", RouterDriver::Routeros, "u", "p");
    both.tls = true;
    both.tls_verify = false;
    both.ca_file = Some("/ca.pem".into());
    let mut snmp = RouterConfig::new("d", "h");
    snmp.username = Some("u".into());
    snmp.tls = true;
    c.routers = vec![missing, verify, both, snmp];
    assert_eq!(
        keys(&c),
        [
            "collector.routers[0].username",
            "collector.routers[0].password",
            "collector.routers[0].snmp",
            "collector.routers[0].retries",
            "collector.routers[1].tls_verify",
            "collector.routers[2].ca_file",
            "collector.routers[3].username",
            "collector.routers[3].tls",
        ]
    );
}

#[test]
fn ids_timing_and_address() {
    let mut c = CollectorConfig::default();
    let mut a = RouterConfig::new("a", "h:99999");
    a.timeout = Some(Duration::from_secs(60));
    a.retries = Some(11);
    let b = RouterConfig::new("a", "h");
    let d = RouterConfig::new("bad id", "h");
    c.routers = vec![a, b, d];
    assert_eq!(
        keys(&c),
        [
            "collector.routers[0].address",
            "collector.routers[0].timeout",
            "collector.routers[0].retries",
            "collector.routers[1].id",
            "collector.routers[2].id"
        ]
    );
}

#[test]
fn config_validation_and_masking_include_routers() {
    let mut c = super::super::Config::default();
    let mut r = RouterConfig::new("edge", "127.0.0.1:1161");
    r.snmp.community = None;
    c.collector.routers = vec![r.clone()];
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("collector.routers[0].snmp.community"), "{err}");
    r.snmp.community = Some("s3cretcommunity".into());
    c.collector.routers = vec![r];
    c.validate().unwrap();
    let yaml = c.to_masked_yaml();
    assert!(!yaml.contains("s3cretcommunity"), "{yaml}");
    assert!(yaml.contains("address: 127.0.0.1:1161"), "{yaml}");
}

#[test]
fn yaml_parses_and_secrets_are_masked() {
    let yaml = "
routers:
  - id: edge
    address: 127.0.0.1:1161
    snmp: { version: v3, user: mon, auth_protocol: sha, auth_password: authsecret1, priv_protocol: aes, priv_password: privsecret1 }
    interval: 10s
    labels: { site: jkt }
  - id: core
    address: 10.0.0.1
    snmp: { community: commsecret }
";
    let mut c: CollectorConfig = serde_yaml::from_str(yaml).unwrap();
    assert_eq!(c.routers.len(), 2);
    assert_eq!(c.routers[0].snmp.priv_protocol, Some(SnmpPrivProtocol::Aes));
    assert_eq!(c.routers[0].interval, Some(Duration::from_secs(10)));
    assert_eq!(c.routers[1].host_port().unwrap(), ("10.0.0.1".into(), 161));
    assert!(router_problems(&c).is_empty(), "{:?}", router_problems(&c));
    c.mask();
    let out = serde_yaml::to_string(&c).unwrap();
    for s in ["authsecret1", "privsecret1", "commsecret"] {
        assert!(!out.contains(s), "{s} leaked:\n{out}");
    }
    assert!(out.contains("user: mon"));
    let typo: Result<CollectorConfig, _> =
        serde_yaml::from_str("routers: [{id: x, address: h, snmp: {comunity: public}}]");
    assert!(typo.unwrap_err().to_string().contains("comunity"));
}
