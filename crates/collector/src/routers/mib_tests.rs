use super::*;

fn vb(arcs: &[u32], value: Value) -> VarBind {
    VarBind {
        oid: Oid::from_slice(arcs),
        value,
    }
}

fn at(base: &[u32], rest: &[u32], value: Value) -> VarBind {
    vb(&[base, rest].concat(), value)
}

fn e(col: u32, idx: u32, v: Value) -> VarBind {
    at(IF_ENTRY, &[col, idx], v)
}

fn x(col: u32, idx: u32, v: Value) -> VarBind {
    at(IFX_ENTRY, &[col, idx], v)
}

fn text(s: &str) -> Value {
    Value::OctetString(s.to_owned().into())
}

#[test]
fn default_route_indexes() {
    // 0.0.0.0/0 via 192.0.2.1, and 10.0.0.0/8.
    assert!(is_default_inet_cidr(&[
        1, 4, 0, 0, 0, 0, 0, 2, 0, 0, 1, 4, 192, 0, 2, 1
    ]));
    assert!(!is_default_inet_cidr(&[
        1, 4, 10, 0, 0, 0, 8, 2, 0, 0, 1, 4, 0, 0, 0, 0
    ]));
    // ::/0
    let mut v6 = vec![2, 16];
    v6.extend([0; 16]);
    v6.extend([0, 2, 0, 0, 2, 16]);
    assert!(is_default_inet_cidr(&v6));
    assert!(!is_default_inet_cidr(&[1, 4, 0, 0]));
    assert!(is_default_ip_cidr(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]));
    assert!(!is_default_ip_cidr(&[10, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert!(is_default_ip_route(&[0, 0, 0, 0]));
    assert!(!is_default_ip_route(&[127, 0, 0, 0]));
}

#[test]
fn tables_join_and_prefer_64_bit() {
    let if_table = vec![
        e(2, 1, text("lo")),
        e(2, 4, text("eth0")),
        e(5, 4, Value::Gauge32(4_294_967_295)),
        e(7, 1, Value::Integer(1)),
        e(7, 4, Value::Integer(1)),
        e(8, 1, Value::Integer(1)),
        e(8, 4, Value::Integer(2)),
        e(10, 1, Value::Counter32(5)),
        e(10, 4, Value::Counter32(7)),
        e(16, 1, Value::Counter32(6)),
        e(16, 4, Value::Counter32(9)),
        e(14, 4, Value::Counter32(3)),
    ];
    let ifx = vec![
        x(1, 4, text("ether1")),
        x(6, 4, Value::Counter64(70_000_000_000)),
        x(10, 4, Value::Counter64(90_000_000_000)),
        x(15, 4, Value::Gauge32(10_000)),
        x(18, 4, text("uplink telkom")),
    ];
    let mut strict = Strict::default();
    let m = interfaces(&if_table, &ifx, &mut strict);
    assert!(strict.bad.is_empty(), "{:?}", strict.bad);
    assert_eq!(m.len(), 2);
    let lo = &m[&1];
    assert_eq!(
        (lo.name.as_str(), lo.oper_up, lo.width),
        ("lo", true, Some(Width::Bits32))
    );
    assert_eq!((lo.in_octets, lo.out_octets), (5, 6));
    let eth = &m[&4];
    assert_eq!(eth.name, "ether1");
    assert_eq!(eth.descr, "eth0");
    assert_eq!(eth.alias, "uplink telkom");
    assert_eq!(eth.width, Some(Width::Bits64));
    assert_eq!((eth.in_octets, eth.out_octets), (70_000_000_000, 90_000_000_000));
    assert_eq!(eth.speed_bps, 10_000_000_000);
    assert_eq!(eth.in_errors, 3);
    assert!(!eth.oper_up && eth.admin_up);
}

#[test]
fn wrongly_typed_values_are_left_out_never_reinterpreted() {
    let if_table = vec![
        // 1: ifOperStatus as the text "up": its state is unknown, so it is
        // left out (it was read as down and fired an alert).
        e(2, 1, text("ether1")),
        e(7, 1, Value::Integer(1)),
        e(8, 1, text("up")),
        // 2: fine status, ifInOctets as a Gauge32: no counters this poll.
        e(2, 2, text("ether2")),
        e(7, 2, Value::Integer(1)),
        e(8, 2, Value::Integer(1)),
        e(10, 2, Value::Gauge32(5)),
        e(16, 2, Value::Counter32(5)),
        // 3: ifOperStatus 9 is no IF-MIB state; ifDescr as an INTEGER.
        e(2, 3, Value::Integer(3)),
        e(7, 3, Value::Integer(1)),
        e(8, 3, Value::Integer(9)),
        // 4: good 32-bit counters, the 64-bit ones are text: 32-bit it is.
        e(2, 4, text("ether4")),
        e(7, 4, Value::Integer(2)),
        e(8, 4, Value::Integer(2)),
        e(10, 4, Value::Counter32(10)),
        e(16, 4, Value::Counter32(20)),
        // 6: no ifAdminStatus at all.
        e(2, 6, text("ether6")),
        e(8, 6, Value::Integer(1)),
    ];
    let ifx = vec![
        x(6, 4, text("12345")),
        x(10, 4, Value::Counter64(1)),
        // 5: an ifXTable row with no ifTable row.
        x(1, 5, text("ghost")),
        x(6, 5, Value::Counter64(1)),
    ];
    let mut strict = Strict::default();
    let m = interfaces(&if_table, &ifx, &mut strict);
    assert_eq!(m.keys().copied().collect::<Vec<_>>(), [2, 4], "{m:?}");
    assert_eq!(m[&2].width, None, "a bad counter gives no counters");
    assert_eq!(
        m[&4].width, None,
        "a bad HC counter makes the interface's counters unusable"
    );
    let bad: Vec<(&str, &str, &str)> = strict
        .bad
        .iter()
        .map(|b| (b.object, b.want.as_str(), b.got.as_str()))
        .collect();
    assert_eq!(
        bad,
        [
            ("ifOperStatus", "INTEGER 1..7", "octet_string \"up\""),
            ("ifInOctets", "Counter32", "gauge32 5"),
            ("ifDescr", "OCTET STRING", "integer 3"),
            ("ifOperStatus", "INTEGER 1..7", "integer 9"),
            ("ifHCInOctets", "Counter64", "octet_string \"12345\""),
            ("ifXEntry", "an ifTable row of the same ifIndex", "none"),
            ("ifAdminStatus", "a value in every ifTable row", "none"),
        ]
    );
    assert_eq!(strict.bad[0].oid, "1.3.6.1.2.1.2.2.1.8.1");
    assert_eq!(strict.bad[6].oid, "1.3.6.1.2.1.2.2.1.7.6");
}

#[test]
fn a_huge_text_is_quoted_short() {
    let mut strict = Strict::default();
    let huge = "x".repeat(100_000);
    let oid = Oid::from_slice(&[1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 1]);
    assert_eq!(
        strict.get("ifOperStatus", &oid, &text(&huge), Want::Integer { min: 1, max: 7 }),
        None
    );
    assert!(strict.bad[0].got.len() < 200, "{}", strict.bad[0].got.len());
    // Absent is not bad.
    assert_eq!(
        strict.get("ifOperStatus", &oid, &Value::NoSuchInstance, Want::Counter32),
        None
    );
    assert_eq!(strict.bad.len(), 1);
}

#[test]
fn addresses_from_both_generations() {
    let ad = |base: &[u32], a: [u32; 4], v: Value| at(base, &a, v);
    let ad_if = vec![
        ad(IP_AD_ENT_IF_INDEX, [203, 0, 113, 7], Value::Integer(1)),
        ad(IP_AD_ENT_IF_INDEX, [192, 168, 88, 1], Value::Integer(5)),
        ad(IP_AD_ENT_IF_INDEX, [10, 9, 9, 9], text("eth0")),
    ];
    let ad_mask = vec![
        ad(
            IP_AD_ENT_NET_MASK,
            [203, 0, 113, 7],
            Value::IpAddress([255, 255, 255, 248]),
        ),
        ad(
            IP_AD_ENT_NET_MASK,
            [192, 168, 88, 1],
            Value::IpAddress([255, 255, 255, 0]),
        ),
    ];
    let v6: Vec<u32> = vec![0x20, 0x01, 0x0d, 0xb8, 0, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let v6_index = [&[2, 16][..], &v6].concat();
    let v4_index = [1, 4, 203, 0, 113, 7];
    let prefix =
        |rest: &[u32]| Value::ObjectIdentifier(Oid::from_slice(&[&[1, 3, 6, 1, 2, 1, 4, 32, 1, 5][..], rest].concat()));
    let addr_if = vec![
        at(IP_ADDRESS_IF_INDEX, &v4_index, Value::Integer(1)),
        at(IP_ADDRESS_IF_INDEX, &v6_index, Value::Integer(1)),
        // A zoned link-local address: left out.
        at(
            IP_ADDRESS_IF_INDEX,
            &[4, 20, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5],
            Value::Integer(1),
        ),
    ];
    let addr_prefix = vec![
        at(IP_ADDRESS_PREFIX, &v4_index, prefix(&[1, 1, 4, 203, 0, 113, 0, 29])),
        at(
            IP_ADDRESS_PREFIX,
            &v6_index,
            prefix(&[&[1, 2, 16][..], &v6, &[48]].concat()),
        ),
    ];
    let mut strict = Strict::default();
    let m = addresses(&ad_if, &ad_mask, &addr_if, &addr_prefix, &mut strict);
    assert_eq!(m[&1], ["203.0.113.7/29", "2001:db8:42::1/48"]);
    assert_eq!(m[&5], ["192.168.88.1/24"]);
    assert_eq!(m.len(), 2);
    assert_eq!(strict.bad.len(), 1);
    assert_eq!(strict.bad[0].object, "ipAdEntIfIndex");
}

#[test]
fn every_object_named_in_the_code_is_in_object_names() {
    let src = include_str!("mib.rs");
    for name in src
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.len() > 3
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_alphanumeric())
        })
        .filter(|s| {
            ["sys", "if", "hr", "snmp", "ip", "inet"]
                .iter()
                .any(|p| s.starts_with(p))
        })
    {
        assert!(OBJECT_NAMES.contains(&name), "{name} is not in OBJECT_NAMES");
    }
    let snmp = include_str!("snmp.rs");
    for name in [
        "inetCidrRouteIfIndex",
        "ipCidrRouteIfIndex",
        "ipRouteIfIndex",
        "sysName",
        "snmpEngineTime",
    ] {
        assert!(snmp.contains(name) && OBJECT_NAMES.contains(&name));
    }
}
