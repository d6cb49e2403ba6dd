//! Shared by the targets: a ruleset and packets from the fuzzer's numbers (`sidecar_model::gen`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sidecar_model::eval::Packet;
use sidecar_model::gen::{ruleset_from_bytes, Numbers, Sizes};
use sidecar_model::{Family, Hook, Ruleset};

/// The pod's addresses, 10.1.0.5 and fd00::5 (constants: parsing them per input costs time).
pub const POD_IPS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, 5)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5)),
];

/// Every hook, for the evaluator (the smt target enters only where connections start).
#[allow(dead_code)]
pub const ALL_HOOKS: [Hook; 5] = [
    Hook::Prerouting,
    Hook::Input,
    Hook::Output,
    Hook::Postrouting,
    Hook::Forward,
];

/// Where a connection's first packet enters.
pub const ENTRIES: [Hook; 2] = [Hook::Output, Hook::Prerouting];

/// A valid ruleset from the fuzzer's numbers: up to `max_user` user chains per table and
/// `max_rules` rules per chain, with an IPv6 half when the numbers say so.
pub fn ruleset(n: &mut Numbers<'_>, max_user: usize, max_rules: usize) -> Ruleset {
    let sizes = Sizes {
        max_user,
        max_rules,
        ipv6: true,
    };
    ruleset_from_bytes(n, &sizes)
}

/// A packet at one of `hooks` with interface names from `ifaces`.
pub fn packet(
    n: &mut Numbers<'_>,
    family: Family,
    hooks: &[Hook],
    ifaces: &[&str],
) -> (Hook, Packet) {
    sidecar_model::gen::packet(&n.seed(), family, hooks, ifaces)
}
