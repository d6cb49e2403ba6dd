//! The chain index changes nothing: an engine that indexes every chain with a keyed rule
//! (`with_index_min(0)`) and one that indexes none (`with_index_min(usize::MAX)`, every rule
//! tried in order) give the same verdict, effects, final packet, hits and undecided rules, on
//! random rulesets, on random rulesets whose rules were given single-address destinations and
//! single ports from the pool packets are drawn from (so that the index has long lists and
//! packets hit them), and on kube-proxy's table of 300 services.

#![cfg(test)]

mod common;

use std::net::IpAddr;

use proptest::prelude::*;
use sidecar_model::ast::{Cidr, Neg, PortRange};
use sidecar_model::eval::{Engine, Packet, Scratch, Trace};
use sidecar_model::gen::strategy::{cases, config, ruleset_strategy, Printed};
use sidecar_model::gen::{packet, Seed, PACKET_V4, PACKET_V6};
use sidecar_model::matches::{Match, Tcp, Udp};
use sidecar_model::synth::kube_proxy::{self, Proto, Spec};
use sidecar_model::*;

/// The ports generated packets use most ([`packet`]'s pool).
const PORTS: [u16; 6] = [15001, 15006, 53, 80, 8080, 32000];

const HOOKS: [Hook; 5] = [
    Hook::Prerouting,
    Hook::Input,
    Hook::Forward,
    Hook::Output,
    Hook::Postrouting,
];

/// `rs` with, by the numbers of `knobs` (one per rule, cycled): no destination in 1 rule of 4,
/// a destination from the packets' pool in 2 (mostly a single address; now and then a prefix or a negated
/// one), no source in half of them, and in half of them `-p tcp` (or udp) with a destination
/// port from [`PORTS`] (mostly a single port; now and then a range around it or a negated one).
fn keyed(mut rs: Ruleset, knobs: &[u32]) -> Ruleset {
    let mut k = knobs.iter().copied().cycle();
    for (fam, tables) in [(Family::Ipv4, &mut rs.ipv4), (Family::Ipv6, &mut rs.ipv6)] {
        for rule in tables
            .iter_mut()
            .flat_map(|t| &mut t.chains)
            .flat_map(|c| &mut c.rules)
        {
            let v = k.next().unwrap_or(0);
            if v % 4 == 3 {
                rule.dst = None;
            } else if v % 4 != 0 {
                let addr: IpAddr = match fam {
                    Family::Ipv4 => PACKET_V4[(v >> 2) as usize % PACKET_V4.len()].into(),
                    Family::Ipv6 => PACKET_V6[(v >> 2) as usize % PACKET_V6.len()].into(),
                };
                // A single address mostly; a prefix around it now and then.
                let width: u8 = if fam == Family::Ipv4 { 32 } else { 128 };
                let prefix = width - [0, 0, 0, 8, 16][(v >> 5) as usize % 5];
                rule.dst = Some(Neg::new(v % 29 == 1, Cidr::new(addr, prefix)));
            }
            if (v >> 3) % 2 == 0 {
                rule.src = None;
            }
            // A protocol whose ports are tested (tcp mostly), with its match.
            if (v >> 8) % 2 == 0 {
                if rule.proto.is_none_or(|p| p.negated || !p.value.has_ports()) {
                    let tcp = (v >> 10) % 4 != 0;
                    rule.proto = Some(Neg::new(
                        false,
                        if tcp { Protocol::TCP } else { Protocol::UDP },
                    ));
                    rule.matches
                        .retain(|m| !matches!(m, Match::Tcp(_) | Match::Udp(_)));
                }
                if !rule
                    .matches
                    .iter()
                    .any(|m| matches!(m, Match::Tcp(_) | Match::Udp(_)))
                {
                    rule.matches.insert(
                        0,
                        if rule.proto.is_some_and(|p| p.value == Protocol::UDP) {
                            Udp::default().into()
                        } else {
                            Tcp::default().into()
                        },
                    );
                }
            }
            for m in &mut rule.matches {
                let dport = match m {
                    Match::Tcp(t) => &mut t.dport,
                    Match::Udp(u) => &mut u.dport,
                    _ => continue,
                };
                if (v >> 8) % 2 == 0 {
                    // A single port mostly; a range around it (79:81) now and then.
                    let p = PORTS[(v >> 9) as usize % PORTS.len()];
                    let r = [0, 0, 1][(v >> 12) as usize % 3];
                    let (lo, hi) = (p.saturating_sub(r), p.saturating_add(r));
                    *dport = Some(Neg::new(v % 31 == 3, PortRange { lo, hi }));
                }
            }
        }
    }
    rs
}

/// Runs `p` at `hook` through both engines and compares everything evaluation says.
fn same(
    indexed: &Engine,
    linear: &Engine,
    hook: Hook,
    p: Packet,
    what: &dyn std::fmt::Debug,
) -> Result<(), TestCaseError> {
    let (mut p1, mut p2) = (p, p);
    let (mut t1, mut t2) = (Trace::default(), Trace::default());
    let r1 = indexed.run_hook(hook, &mut p1, &mut Scratch::default(), &mut t1);
    let r2 = linear.run_hook(hook, &mut p2, &mut Scratch::default(), &mut t2);
    prop_assert_eq!(r1, r2, "verdict of {:?} at {:?} in {:?}", p, hook, what);
    prop_assert_eq!(
        p1,
        p2,
        "final packet of {:?} at {:?} in {:?}",
        p,
        hook,
        what
    );
    prop_assert_eq!(&t1, &t2, "trace of {:?} at {:?} in {:?}", p, hook, what);
    Ok(())
}

fn engines(rs: &Ruleset) -> (Engine, Engine) {
    (
        Engine::new(rs).with_index_min(0),
        Engine::new(rs).with_index_min(usize::MAX),
    )
}

/// Checks `rs` on a packet of each seed ([`packet`]); with `our_ports`, the packets' ports and
/// protocols are mostly those [`keyed`] gives rules.
fn check(rs: &Printed, seeds: &[Seed], our_ports: bool) -> Result<(), TestCaseError> {
    let (indexed, linear) = engines(&rs.0);
    prop_assert_eq!(linear.index_stats().chains, 0);
    let ifaces = ["lo", "eth0", "eth1"];
    for (i, s) in seeds.iter().enumerate() {
        let fam = if i % 3 == 2 {
            Family::Ipv6
        } else {
            Family::Ipv4
        };
        let (hook, mut p) = packet(s, fam, &HOOKS, &ifaces);
        if our_ports && s[4] % 5 != 0 {
            p.dport = PORTS[(s[4] >> 3) as usize % PORTS.len()];
            p.proto = if s[7] % 4 == 0 { 17 } else { 6 };
        }
        same(&indexed, &linear, hook, p, rs)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(cases(256)))]

    #[test]
    fn the_index_changes_nothing_on_random_rulesets(
        rs in ruleset_strategy(5, 8),
        seeds in prop::collection::vec(any::<Seed>(), 1..12),
    ) {
        check(&rs, &seeds, false)?;
    }

    #[test]
    fn the_index_changes_nothing_on_rulesets_of_single_addresses_and_ports(
        (rs, knobs) in (ruleset_strategy(3, 40), prop::collection::vec(any::<u32>(), 1..64)),
        seeds in prop::collection::vec(any::<Seed>(), 1..24),
    ) {
        let rs = Printed(keyed(rs.0, &knobs));
        check(&rs, &seeds, true)?;
    }
}

/// kube-proxy's nat table of 300 services: every service's cluster IP and port, the port
/// beside it, and a node port, from a node process and from a pod, give the same everything
/// with the index as without; and the index is there (`KUBE-SERVICES`, `KUBE-NODEPORTS`).
#[test]
fn the_index_changes_nothing_on_kube_proxy_tables() {
    let spec = Spec {
        services: 300,
        endpoints: 2,
        nodeport_every: 3,
        ..Spec::default()
    };
    let rs = parse("kube", kube_proxy::generate(&spec).unwrap().as_bytes())
        .unwrap()
        .ruleset;
    let (indexed, linear) = engines(&rs);
    let default = Engine::new(&rs).index_stats();
    assert_eq!(default.chains, 2, "{default:?}");
    assert_eq!(default.keyed, 300 + 100, "{default:?}");
    let node: IpAddr = "192.168.0.10".parse().unwrap();
    let pod: IpAddr = "10.244.3.17".parse().unwrap();
    let mut hits = 0;
    for s in kube_proxy::services(&spec).unwrap() {
        let proto = if s.proto == Proto::Tcp { 6 } else { 17 };
        let dsts = [
            (IpAddr::from(s.cluster_ip), s.port),
            (s.cluster_ip.into(), s.port.wrapping_add(1)),
            (node, s.node_port.unwrap_or(30000)),
        ];
        for (dst, dport) in dsts {
            for hook in [Hook::Output, Hook::Prerouting] {
                let mut p = Packet::tcp_out(node, dst, 40000, dport, 0, 0);
                p.proto = proto;
                if hook == Hook::Prerouting {
                    p.src = pod;
                    p.has_socket = false;
                    p.in_iface = Some("cni0".into());
                } else {
                    p.out_iface = Some("eth0".into());
                }
                same(&indexed, &linear, hook, p, &s.port_ref()).unwrap();
                let mut t = Trace::default();
                indexed.run_hook(hook, &mut p, &mut Scratch::default(), &mut t);
                hits += usize::from(p.dst != dst);
            }
        }
    }
    // Every cluster IP and port is translated, from both hooks (the node ports are not: the
    // engine knows no local address but loopback's, so `addrtype LOCAL` does not hold).
    assert_eq!(hits, 2 * 300);
}
