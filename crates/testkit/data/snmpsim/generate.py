# Generates the MikroTik-like snmpsim recordings (run once; the output is committed).
import sys
def oid(s): return tuple(int(x) for x in s.split('.'))
def gen(with_inet):
    rows = []
    add = lambda o, t, v: rows.append((oid(o), t, v))
    add("1.3.6.1.2.1.1.1.0", 4, "RouterOS RB5009UG+S+")
    add("1.3.6.1.2.1.1.2.0", 6, "1.3.6.1.4.1.14988.1")
    add("1.3.6.1.2.1.1.3.0", 67, "123456789")   # 14 days 6:56:07
    add("1.3.6.1.2.1.1.4.0", 4, "noc@example.net")
    add("1.3.6.1.2.1.1.5.0", 4, "mt-edge-sim")
    add("1.3.6.1.2.1.1.6.0", 4, "Jakarta")
    add("1.3.6.1.2.1.2.1.0", 2, "5")
    ifs = [
      # idx, name, type, speed, admin, oper, hc_in, hc_out, in_ucast, out_ucast, in_err, out_err, in_drop, out_drop, alias, mac
      (1, "ether1", 6, 1000000000, 1, 1, 123456789012345, 9876543210987, 900000000, 800000000, 12, 0, 3, 0, "WAN Telkom IndiHome", "4c5e0c000001"),
      (2, "ether2", 6, 1000000000, 1, 1, 5555555555, 66666666666, 40000000, 50000000, 0, 0, 0, 0, "LAN", "4c5e0c000002"),
      (3, "sfp-sfpplus1", 6, 4294967295, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, "WAN Biznet (down)", "4c5e0c000003"),
      (4, "pppoe-out1", 23, 0, 1, 1, 777777777, 88888888, 600000, 500000, 0, 0, 0, 0, "", ""),
      (5, "bridge", 6, 0, 1, 1, 4444444444, 3333333333, 30000000, 20000000, 0, 0, 0, 0, "", "4c5e0c000002"),
    ]
    hs = {1: 1000, 2: 1000, 3: 10000, 4: 0, 5: 0}
    for i in ifs:
        idx, name, typ, speed, adm, opr, hin, hout, iu, ou, ie, oe, idr, odr, alias, mac = i
        e = "1.3.6.1.2.1.2.2.1.%d." + str(idx)
        add(e % 1, 2, str(idx))
        add(e % 2, 4, name)
        add(e % 3, 2, str(typ))
        add(e % 4, 2, "1500")
        add(e % 5, 66, str(speed))
        add(e % 6, "4x", mac)
        add(e % 7, 2, str(adm))
        add(e % 8, 2, str(opr))
        add(e % 9, 67, "100")
        add(e % 10, 65, str(hin % 2**32))
        add(e % 11, 65, str(iu % 2**32))
        add(e % 13, 65, str(idr))
        add(e % 14, 65, str(ie))
        add(e % 16, 65, str(hout % 2**32))
        add(e % 17, 65, str(ou % 2**32))
        add(e % 19, 65, str(odr))
        add(e % 20, 65, str(oe))
        x = "1.3.6.1.2.1.31.1.1.1.%d." + str(idx)
        add(x % 1, 4, name)
        add(x % 6, 70, str(hin))
        add(x % 7, 70, str(iu))
        add(x % 10, 70, str(hout))
        add(x % 11, 70, str(ou))
        add(x % 15, 66, str(hs[idx]))
        add(x % 18, 4, alias)
    # ipCidrRouteTable: dest.mask.tos.nexthop; columns 1 dest, 5 ifIndex, 7 type, 11 mask? (use 1,2,5,11)
    routes = [("0.0.0.0", "0.0.0.0", "192.0.2.1", 1), ("192.0.2.0", "255.255.255.0", "0.0.0.0", 1),
              ("192.168.88.0", "255.255.255.0", "0.0.0.0", 5)]
    for dest, mask, nh, ifi in routes:
        ix = "%s.%s.0.%s" % (dest, mask, nh)
        add("1.3.6.1.2.1.4.24.4.1.1." + ix, 64, dest)
        add("1.3.6.1.2.1.4.24.4.1.2." + ix, 64, mask)
        add("1.3.6.1.2.1.4.24.4.1.5." + ix, 2, str(ifi))
    if with_inet:
        for dest, mask, nh, ifi in routes:
            plen = sum(bin(int(o)).count("1") for o in mask.split("."))
            ix = "1.4.%s.%d.2.0.0.1.4.%s" % (dest, plen, nh)
            add("1.3.6.1.2.1.4.24.7.1.7." + ix, 2, str(ifi))
            add("1.3.6.1.2.1.4.24.7.1.8." + ix, 2, "4" if nh != "0.0.0.0" else "3")
    rows.sort(key=lambda r: r[0])
    return "".join("%s|%s|%s\n" % (".".join(map(str, o)), t, v) for o, t, v in rows)
open("mikrotik-rb5009.snmprec", "w").write(gen(True))
open("mikrotik-ipcidr.snmprec", "w").write(gen(False))


# --- Recordings of #16 and #21 (run: python3 generate.py) ---------------------
def write(name, rows):
    rows.sort(key=lambda r: r[0])
    open(name, "w").write("".join("%s|%s|%s\n" % (".".join(map(str, o)), t, v) for o, t, v in rows))

def iface_rows(add, idx, name, typ, speed, adm, opr, cin, cout):
    e = "1.3.6.1.2.1.2.2.1.%d." + str(idx)
    add(e % 1, 2, str(idx))
    add(e % 2, 4, name)
    add(e % 3, 2, str(typ))
    add(e % 5, 66, str(speed))
    add(e % 7, 2, str(adm))
    add(e % 8, *opr) if isinstance(opr, tuple) else add(e % 8, 2, str(opr))
    add(e % 10, *cin) if isinstance(cin, tuple) else add(e % 10, 65, str(cin))
    add(e % 16, *cout) if isinstance(cout, tuple) else add(e % 16, 65, str(cout))

def brocade_iproute():
    """An old switch-router: 32-bit counters only (no ifXTable), the default
    route only in RFC 1213 ipRouteTable (ipRouteIfIndex.0.0.0.0 = 1, with rows
    after it), writable counters of eth0 and oper status of eth1 (snmpsim's
    writecache: the test SETs them between polls)."""
    rows = []
    add = lambda o, t, v: rows.append((oid(o), t, v))
    add("1.3.6.1.2.1.1.1.0", 4, "Brocade Communications Systems, Inc. ICX6450-24, IronWare Version 08.0.30")
    add("1.3.6.1.2.1.1.3.0", 67, "5000000")
    add("1.3.6.1.2.1.1.5.0", 4, "icx-core")
    add("1.3.6.1.2.1.2.1.0", 2, "4")
    iface_rows(add, 1, "eth0", 6, 1000000000, 1, 1, ("65:writecache", "value=4294966296"), ("65:writecache", "value=100"))
    iface_rows(add, 2, "eth1", 6, 1000000000, 1, ("2:writecache", "value=1"), 1000, 1000)
    iface_rows(add, 3, "eth2", 6, 1000000000, 1, 2, 0, 0)   # enabled, never up
    iface_rows(add, 4, "eth3", 6, 1000000000, 2, 2, 0, 0)   # disabled
    for dest, ifi, nh in [("0.0.0.0", 1, "192.0.2.1"), ("10.0.0.0", 2, "0.0.0.0"), ("192.168.1.0", 2, "0.0.0.0")]:
        add("1.3.6.1.2.1.4.21.1.1." + dest, 64, dest)
        add("1.3.6.1.2.1.4.21.1.2." + dest, 2, str(ifi))
        add("1.3.6.1.2.1.4.21.1.7." + dest, 64, nh)
    write("brocade-iproute.snmprec", rows)

def bad_types():
    """An agent that sends wrong types: ifOperStatus.1 as the text "up",
    ifHCInOctets.2 as a text, and an ifXTable row (9) with no ifTable row."""
    rows = []
    add = lambda o, t, v: rows.append((oid(o), t, v))
    add("1.3.6.1.2.1.1.1.0", 4, "Bad Agent 1.0")
    add("1.3.6.1.2.1.1.3.0", 67, "4242")
    add("1.3.6.1.2.1.1.5.0", 4, "bad-agent")
    iface_rows(add, 1, "ether1", 6, 1000000000, 1, (4, "up"), 10, 10)
    iface_rows(add, 2, "ether2", 6, 1000000000, 1, 1, 20, 20)
    iface_rows(add, 3, "ether3", 6, 1000000000, 1, 1, 30, 30)
    x = "1.3.6.1.2.1.31.1.1.1.%d."
    for idx, name, hin, hout in [(2, "ether2", (4, "123456"), (70, "654321")), (3, "ether3", (70, "3000"), (70, "3001")), (9, "ghost", (70, "9"), (70, "9"))]:
        add(x % 1 + str(idx), 4, name)
        add(x % 6 + str(idx), *hin)
        add(x % 10 + str(idx), *hout)
    add("1.3.6.1.2.1.4.24.4.1.5.0.0.0.0.0.0.0.0.0.192.0.2.1", 2, "3")
    write("bad-types.snmprec", rows)

def isp_addresses():
    """Interface addresses in both MIB generations: ipAddrTable (IPv4) and
    ipAddressTable (IPv4 and IPv6, prefixes by RowPointer), and default
    routes 0.0.0.0/0 via ether1 and ::/0 via ether3 (inetCidrRouteTable)."""
    rows = []
    add = lambda o, t, v: rows.append((oid(o), t, v))
    add("1.3.6.1.2.1.1.1.0", 4, "RouterOS CCR2004-1G-12S+2XS")
    add("1.3.6.1.2.1.1.3.0", 67, "777777")
    add("1.3.6.1.2.1.1.5.0", 4, "isp-edge")
    for idx, name, alias in [(1, "ether1", "port 1"), (2, "ether2", "wuxianwangluo office"), (3, "ether3", "port 3")]:
        iface_rows(add, idx, name, 6, 1000000000, 1, 1, 1000 * idx, 1000 * idx)
        add("1.3.6.1.2.1.31.1.1.1.1.%d" % idx, 4, name)
        add("1.3.6.1.2.1.31.1.1.1.18.%d" % idx, 4, alias)
    for addr, ifi, mask in [("203.0.113.7", 1, "255.255.255.248"), ("192.168.88.1", 2, "255.255.255.0")]:
        add("1.3.6.1.2.1.4.20.1.1." + addr, 64, addr)
        add("1.3.6.1.2.1.4.20.1.2." + addr, 2, str(ifi))
        add("1.3.6.1.2.1.4.20.1.3." + addr, 64, mask)
    def v6(groups):
        out = []
        for g in groups:
            out += [g >> 8, g & 0xff]
        return ".".join(map(str, out))
    addrs = [
        ("1.4.203.0.113.7", 1, "1.4.203.0.113.0", 29),
        ("2.16." + v6([0x2001, 0xdb8, 0x42, 0, 0, 0, 0, 7]), 1, "2.16." + v6([0x2001, 0xdb8, 0x42, 0, 0, 0, 0, 0]), 48),
        ("2.16." + v6([0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 2]), 3, "2.16." + v6([0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 0]), 64),
    ]
    for ix, ifi, pfx, plen in addrs:
        add("1.3.6.1.2.1.4.34.1.3." + ix, 2, str(ifi))
        add("1.3.6.1.2.1.4.34.1.4." + ix, 2, "1")
        add("1.3.6.1.2.1.4.34.1.5." + ix, 6, "1.3.6.1.2.1.4.32.1.5.%d.%s.%d" % (ifi, pfx, plen))
    v6zero = "2.16." + ".".join(["0"] * 16)
    add("1.3.6.1.2.1.4.24.7.1.7.1.4.0.0.0.0.0.2.0.0.1.4.203.0.113.1", 2, "1")
    add("1.3.6.1.2.1.4.24.7.1.7.%s.0.2.0.0.2.16.%s" % (v6zero, v6([0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 1])), 2, "3")
    write("isp-addresses.snmprec", rows)

brocade_iproute()
bad_types()
isp_addresses()
