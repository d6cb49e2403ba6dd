//! Shared by the targets: a first packet from the fuzzer's numbers.

use sidecar_model::eval::{ConnState, IfName, Packet};
use sidecar_model::gen::Numbers;
use sidecar_model::{Family, Hook};
use std::net::IpAddr;

/// A packet at a hook (any of the five, or only OUTPUT/PREROUTING when `entry_only`).
pub fn packet(n: &mut Numbers<'_>, family: Family, entry_only: bool) -> (Hook, Packet) {
    let s = n.seed();
    let v4 = [
        "10.1.0.5",
        "127.0.0.1",
        "127.0.0.6",
        "10.1.0.99",
        "10.96.0.1",
        "1.1.1.1",
        "9.9.1.1",
    ];
    let v6 = ["fd00::5", "::1", "::6", "fd00::99", "2001:db8::1"];
    let pool: Vec<IpAddr> = match family {
        Family::Ipv4 => v4.iter().filter_map(|a| a.parse().ok()).collect(),
        Family::Ipv6 => v6.iter().filter_map(|a| a.parse().ok()).collect(),
    };
    let at = |i: u32| pool[i as usize % pool.len()];
    let ports = [
        15001u16, 15006, 15008, 15090, 15020, 15021, 53, 80, 22, 8080,
    ];
    let port = |i: u32| {
        if i % 4 == 0 {
            (i >> 2) as u16
        } else {
            ports[i as usize % ports.len()]
        }
    };
    let ids = [0u32, 1000, 1337, 1_000_670_000, 3, 4];
    let hooks: &[Hook] = if entry_only {
        &[Hook::Output, Hook::Prerouting]
    } else {
        &[
            Hook::Prerouting,
            Hook::Input,
            Hook::Output,
            Hook::Postrouting,
            Hook::Forward,
        ]
    };
    let hook = hooks[s[0] as usize % hooks.len()];
    let local = matches!(hook, Hook::Output | Hook::Postrouting);
    let mut p = Packet::tcp_out(
        at(s[1]),
        at(s[2]),
        port(s[3]),
        port(s[4]),
        ids[s[5] as usize % ids.len()],
        ids[s[6] as usize % ids.len()],
    );
    p.proto = [6u8, 6, 17, 1][s[7] as usize % 4];
    p.tcp_flags = if p.proto == 6 { (s[8] & 0x3f) as u8 } else { 0 };
    p.has_socket = local && s[9] % 5 != 0;
    let ifaces = ["lo", "eth0", "eth1", "not-istio-nic"];
    if !local {
        p.in_iface = Some(IfName::new(ifaces[s[10] as usize % 4]));
    }
    if matches!(hook, Hook::Output | Hook::Postrouting | Hook::Forward) {
        p.out_iface = Some(IfName::new(ifaces[(s[10] >> 4) as usize % 4]));
    }
    p.mark = [0, 0, 0x539, 0x111, s[11]][s[11] as usize % 5];
    p.ctstate = [
        ConnState::New,
        ConnState::New,
        ConnState::Established,
        ConnState::Related,
    ][(s[11] >> 8) as usize % 4];
    if entry_only && hook == Hook::Prerouting {
        p.has_socket = false;
        p.uid = 0;
        p.gid = 0;
    }
    (hook, p)
}
