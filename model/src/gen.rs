//! Valid random rulesets from numbers, for property tests and fuzzing: each match and target is
//! placed only where iptables accepts it (REDIRECT in nat PREROUTING/OUTPUT, owner in
//! OUTPUT/POSTROUTING, jumps only to later user chains, …), so every ruleset built here is one
//! the kernel would load. Built from vectors of numbers so that proptest shrinks them and
//! libFuzzer mutates them; [`ruleset_from_bytes`] reads the numbers from raw bytes.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    missing_docs,
    reason = "a generator for tests and fuzzing: every index is taken modulo the length"
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::matches::GenCx;
use crate::*;

#[cfg(feature = "proptest")]
pub mod strategy;

/// How big generated rulesets get.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// The most user chains per table.
    pub max_user: usize,
    /// The most rules per chain.
    pub max_rules: usize,
    /// Whether an IPv6 half may be generated.
    pub ipv6: bool,
}

impl Default for Sizes {
    fn default() -> Sizes {
        Sizes {
            max_user: 5,
            max_rules: 8,
            ipv6: true,
        }
    }
}

/// Numbers read from bytes, 4 at a time; zeros once the bytes run out.
pub struct Numbers<'a> {
    data: &'a [u8],
}

impl<'a> Numbers<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Numbers<'a> {
        Numbers { data }
    }

    /// The next number.
    pub fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        let n = self.data.len().min(4);
        b[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        u32::from_le_bytes(b)
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A seed of 12 numbers.
    pub fn seed(&mut self) -> Seed {
        let mut s = [0u32; 12];
        for v in &mut s {
            *v = self.next_u32();
        }
        s
    }

    fn family(&mut self, sizes: &Sizes) -> Vec<(u32, Vec<Vec<Seed>>)> {
        (0..5)
            .map(|_| {
                let tseed = self.next_u32();
                let n_chains = self.next_u32() as usize % (5 + sizes.max_user + 1);
                let chains = (0..n_chains)
                    .map(|_| {
                        let n = self.next_u32() as usize % (sizes.max_rules + 1);
                        (0..n).map(|_| self.seed()).collect()
                    })
                    .collect();
                (tseed, chains)
            })
            .collect()
    }
}

/// A valid ruleset from raw bytes (a fuzzer's input).
pub fn ruleset_from_bytes(data: &mut Numbers<'_>, sizes: &Sizes) -> Ruleset {
    let v4 = data.family(sizes);
    let with_v6 = sizes.ipv6 && data.next_u32() % 2 == 1;
    let v6 = if with_v6 {
        Some(data.family(sizes))
    } else {
        None
    };
    build_ruleset(&v4, v6.as_deref())
}

/// `count` rulesets of the default [`Sizes`] from a fixed sequence of numbers (a linear
/// congruential generator started at `start`): a deterministic sample for tests that want
/// every kind of match and target without proptest.
pub fn sample(count: usize, start: u64) -> Vec<Ruleset> {
    let mut x = start;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 32) as u32
    };
    let sizes = Sizes::default();
    (0..count)
        .map(|_| {
            let mut bytes = Vec::new();
            // Enough numbers for both families at the largest sizes.
            for _ in 0..2 * 5 * (3 + (5 + sizes.max_user) * (1 + sizes.max_rules * 12)) {
                bytes.extend_from_slice(&next().to_le_bytes());
            }
            ruleset_from_bytes(&mut Numbers::new(&bytes), &sizes)
        })
        .collect()
}

pub type Seed = [u32; 12];
/// Per table: a selector and, per chain, the seeds of its rules.
pub type FamilySeeds = [(u32, Vec<Vec<Seed>>)];

pub fn build_ruleset(v4: &FamilySeeds, v6: Option<&FamilySeeds>) -> Ruleset {
    Ruleset {
        ipv4: build_family(Family::Ipv4, v4),
        ipv6: v6
            .map(|s| build_family(Family::Ipv6, s))
            .unwrap_or_default(),
    }
}

pub fn build_family(fam: Family, seeds: &FamilySeeds) -> Vec<Table> {
    let mut tables = Vec::new();
    for (kind, (tseed, chains)) in TableKind::SAVE_ORDER.into_iter().zip(seeds) {
        if tseed % 3 == 0 {
            continue;
        }
        let builtins = kind.builtin_chains();
        let n_user = chains.len().saturating_sub(builtins.len());
        let user_names: Vec<String> = (0..n_user).map(|i| format!("U{i:02}")).collect();
        let mut out = Vec::new();
        for (i, hook) in builtins.iter().enumerate() {
            let rules = chains.get(i).map(|v| v.as_slice()).unwrap_or(&[]);
            out.push(Chain {
                name: hook.name().into(),
                policy: Some(if (tseed >> (i + 2)) & 1 == 1 {
                    Policy::Drop
                } else {
                    Policy::Accept
                }),
                counters: Counters {
                    packets: u64::from(tseed % 7),
                    bytes: u64::from(tseed % 1000),
                },
                rules: rules
                    .iter()
                    .map(|s| build_rule(fam, kind, Some(*hook), 0, &user_names, s))
                    .collect(),
                base: None,
            });
        }
        for (u, name) in user_names.iter().enumerate() {
            let rules = chains
                .get(builtins.len() + u)
                .map(|v| v.as_slice())
                .unwrap_or(&[]);
            out.push(Chain {
                name: name.clone(),
                policy: None,
                counters: Counters::default(),
                rules: rules
                    .iter()
                    .map(|s| build_rule(fam, kind, None, u + 1, &user_names, s))
                    .collect(),
                base: None,
            });
        }
        tables.push(Table {
            kind,
            chains: out,
            nft: None,
        });
    }
    tables
}

pub fn pick<T: Clone>(v: &[T], s: u32) -> T {
    v[s as usize % v.len()].clone()
}

pub fn addr(fam: Family, s: u32, t: u32) -> IpAddr {
    match fam {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::from(s)),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::from((u128::from(s) << 96) | u128::from(t))),
    }
}

pub fn cidr(fam: Family, s: u32, t: u32) -> Option<Neg<Cidr>> {
    let width = if fam == Family::Ipv4 { 33 } else { 129 };
    let negated = s & 1 == 1;
    match s % 3 {
        0 => None,
        _ => {
            let c = Cidr::new(addr(fam, t, s), (t % width) as u8);
            (negated || !c.is_any()).then_some(Neg::new(negated, c))
        }
    }
}

pub fn ports(s: u32) -> Option<Neg<PortRange>> {
    let negated = s & 1 == 1;
    let lo = (s >> 1) as u16;
    let hi = if s & 2 == 0 {
        lo
    } else {
        lo.saturating_add((s >> 17) as u16 % 500)
    };
    let r = PortRange { lo, hi };
    match s % 3 {
        0 => None,
        _ => (negated || !r.is_any()).then_some(Neg::new(negated, r)),
    }
}

pub fn port_range(s: u32) -> PortRange {
    let lo = (s % 65536) as u16;
    let hi = if s & 0x10000 == 0 {
        lo
    } else {
        lo.saturating_add((s >> 20) as u16 % 100)
    };
    PortRange { lo, hi }
}

pub fn id(s: u32) -> IdSpec {
    if s % 7 == 0 {
        return IdSpec::Name(pick(&["java", "ftp", "nobody"], s >> 3).to_string());
    }
    let lo = s >> 4;
    let hi = if s & 8 == 0 { lo } else { lo + (s & 0xffff) };
    IdSpec::Range { lo, hi }
}

pub fn subset<T: Copy + Ord>(all: &[T], bits: u32) -> Vec<T> {
    let mut v: Vec<T> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, x)| *x)
        .collect();
    if v.is_empty() {
        v.push(all[0]);
    }
    v.sort();
    v
}

pub const STRINGS: &[&str] = &[
    "plain",
    "envoy's rule",
    "with \"quotes\"",
    "back\\slash",
    "x: ",
    "",
    "ünïcode",
    "a-b_c",
];

pub fn build_rule(
    fam: Family,
    table: TableKind,
    hook: Option<Hook>,
    chain_idx: usize,
    users: &[String],
    s: &Seed,
) -> Rule {
    let mut r = Rule {
        counters: if s[0] % 5 == 0 {
            Counters {
                packets: u64::from(s[1]),
                bytes: u64::from(s[2]),
            }
        } else {
            Counters::default()
        },
        src: cidr(fam, s[1], s[2]),
        dst: cidr(fam, s[2], s[3]),
        ..Rule::default()
    };
    let ifaces = ["lo", "eth0", "eth+", "veth1234567890a"];
    if !matches!(hook, Some(Hook::Output | Hook::Postrouting)) && s[3] % 3 == 0 {
        r.in_iface = Some(Box::new(Neg::new(
            s[3] & 8 != 0,
            Iface(pick(&ifaces, s[4]).into()),
        )));
    }
    if !matches!(hook, Some(Hook::Prerouting | Hook::Input)) && s[4] % 3 == 0 {
        r.out_iface = Some(Box::new(Neg::new(
            s[4] & 8 != 0,
            Iface(pick(&ifaces, s[3]).into()),
        )));
    }
    let protos = [
        None,
        Some(Protocol::TCP),
        Some(Protocol::UDP),
        Some(Protocol::TCP),
        Some(Protocol::ICMP),
        Some(Protocol(47)),
        Some(Protocol(200)),
    ];
    let proto = pick(&protos, s[5]);
    let proto_neg = proto.is_some() && s[5] % 11 == 10;
    r.proto = proto.map(|p| Neg::new(proto_neg, p));
    if fam == Family::Ipv4 && s[5] % 13 == 0 {
        r.fragment = Some(s[6] & 1 == 0);
    }
    let l4 = if proto_neg { None } else { proto };
    // Matches: up to three, chosen by successive bits of s[6].
    for k in 0..3 {
        let sel = (s[6] >> (k * 5)) % 32;
        let v = s[7].rotate_left(k * 7);
        let m = Match::generate(
            sel,
            &GenCx {
                v,
                s,
                hook,
                l4,
                family: fam,
            },
        );
        r.matches.extend(m);
    }
    // Target.
    // The user chains after this one (user chain `chain_idx - 1`): jumps go forward only.
    let later = users.get(chain_idx..).unwrap_or(&[]);
    let t = s[10] % 24;
    r.target = match t {
        0 => None,
        1 | 2 => Some(Target::Accept),
        3 => Some(Target::Drop),
        4 => Some(Target::Return),
        5..=7 if !later.is_empty() => Some(Target::Jump {
            chain: pick(later, s[11]),
        }),
        8 if !later.is_empty() => Some(Target::Goto {
            chain: pick(later, s[11]),
        }),
        9 => Some(Target::Mark(MarkMask {
            value: s[8],
            mask: s[9],
        })),
        10 => Some(Target::ConnmarkSet(MarkMask {
            value: s[9],
            mask: s[8],
        })),
        11 => Some(Target::ConnmarkSave {
            nfmask: s[8],
            ctmask: s[9],
        }),
        12 => Some(Target::ConnmarkRestore {
            nfmask: s[9],
            ctmask: s[8],
        }),
        13 => Some(Target::Log {
            prefix: (s[11] & 1 == 1).then(|| pick(STRINGS, s[11] >> 1).to_string()),
            level: (s[11] % 8) as u8,
            flags: [
                "--log-tcp-sequence",
                "--log-tcp-options",
                "--log-ip-options",
                "--log-uid",
                "--log-macdecode",
            ]
            .iter()
            .enumerate()
            .filter(|(i, _)| s[9] & (1 << i) != 0)
            .map(|(_, f)| f.to_string())
            .collect(),
        }),
        14 => Some(Target::Nflog {
            prefix: (s[11] & 1 == 1).then(|| pick(STRINGS, s[11] >> 1).to_string()),
            group: s[8] as u16,
            size: (s[9] & 1 == 1).then_some(s[9] >> 1),
            threshold: (s[9] & 2 == 2).then_some(2 + (s[8] % 100) as u16),
        }),
        15 => Some(Target::Unknown {
            name: "TCPMSS".into(),
            args: vec!["--clamp-mss-to-pmtu".into()],
        }),
        16 if table == TableKind::Nat && matches!(hook, Some(Hook::Prerouting | Hook::Output)) => {
            Some(Target::Redirect {
                ports: l4.filter(|p| p.has_ports()).map(|_| port_range(s[11])),
                random: s[9] & 1 == 1,
            })
        }
        17 if table == TableKind::Nat && matches!(hook, Some(Hook::Prerouting | Hook::Output)) => {
            Some(Target::Dnat {
                to: NatRange {
                    addr_lo: Some(addr(fam, s[8], s[9])),
                    addr_hi: (s[9] & 1 == 1)
                        .then(|| addr(fam, s[8].wrapping_add(1 + s[9] % 9), s[9])),
                    ports: l4.filter(|p| p.has_ports()).map(|_| port_range(s[11])),
                },
                random: s[9] & 2 == 2,
                persistent: s[9] & 4 == 4,
            })
        }
        18 if table == TableKind::Nat && matches!(hook, Some(Hook::Postrouting)) => {
            Some(Target::Masquerade {
                ports: l4.filter(|p| p.has_ports()).map(|_| port_range(s[11])),
                random: s[9] & 2 == 2,
                random_fully: s[9] & 4 == 4,
            })
        }
        19 if table == TableKind::Nat && matches!(hook, Some(Hook::Postrouting | Hook::Input)) => {
            Some(Target::Snat {
                to: NatRange {
                    addr_lo: Some(addr(fam, s[8], s[9])),
                    addr_hi: None,
                    ports: None,
                },
                random: s[9] & 2 == 2,
                random_fully: s[9] & 4 == 4,
                persistent: s[9] & 8 == 8,
            })
        }
        20 if table == TableKind::Mangle
            && hook == Some(Hook::Prerouting)
            && matches!(l4, Some(Protocol::TCP | Protocol::UDP)) =>
        {
            Some(Target::Tproxy {
                on_port: s[11] as u16,
                on_ip: (s[9] & 1 == 1).then(|| addr(fam, s[8] | 1, s[9] | 1)),
                mark: MarkMask {
                    value: s[8],
                    mask: s[9],
                },
            })
        }
        21 if table == TableKind::Raw => Some(Target::Ct {
            notrack: s[9] & 1 == 1,
            zone: (s[9] & 2 == 2).then(|| CtZone {
                id: (s[8] % 65535 + 1) as u16,
                orig: pick(&[None, Some(true), Some(false)], s[8]),
            }),
        }),
        22 if table == TableKind::Raw => Some(Target::Notrack),
        23 if table == TableKind::Filter => Some(Target::Reject {
            with: match fam {
                Family::Ipv4 => pick(
                    &[
                        "icmp-port-unreachable",
                        "icmp-host-prohibited",
                        "icmp-admin-prohibited",
                    ],
                    s[9],
                ),
                Family::Ipv6 => pick(
                    &[
                        "icmp6-port-unreachable",
                        "icmp6-adm-prohibited",
                        "icmp6-no-route",
                    ],
                    s[9],
                ),
            }
            .to_string(),
        }),
        _ => Some(Target::Accept),
    };
    r
}

/// The IPv4 addresses of generated packets ([`packet`]): the pod, loopback, the inbound
/// passthrough source, the peer, a VIP, remotes, link-local (generated ranges lie around them).
pub const PACKET_V4: [Ipv4Addr; 8] = [
    Ipv4Addr::new(10, 1, 0, 5),
    Ipv4Addr::new(127, 0, 0, 1),
    Ipv4Addr::new(127, 0, 0, 6),
    Ipv4Addr::new(10, 1, 0, 99),
    Ipv4Addr::new(10, 96, 0, 1),
    Ipv4Addr::new(1, 1, 1, 1),
    Ipv4Addr::new(9, 9, 1, 1),
    Ipv4Addr::new(169, 254, 7, 127),
];
/// The IPv6 addresses of generated packets ([`packet`]): the pod, loopback, the inbound
/// passthrough source, the peer, a remote.
pub const PACKET_V6: [Ipv6Addr; 5] = [
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5),
    Ipv6Addr::LOCALHOST,
    Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 6),
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x99),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
];

/// The conntrack states of generated packets, by a seed's number modulo 4 (NEW half the time).
pub const CONN_STATES: [crate::eval::ConnState; 4] = {
    use crate::eval::ConnState::*;
    [New, New, Established, Related]
};

/// A packet at one of `hooks` from a seed: addresses from a pool of the family's interesting
/// ones (pod, loopback, passthrough, peer, VIP, remote), the mesh's ports or any, the mesh's
/// uids and gids, TCP/UDP/ICMP, interface names from `ifaces`, marks and conntrack states a
/// mesh uses. Packets at PREROUTING, INPUT and FORWARD have no socket (and uid/gid 0).
pub fn packet(
    s: &Seed,
    family: Family,
    hooks: &[Hook],
    ifaces: &[&str],
) -> (Hook, crate::eval::Packet) {
    use crate::eval::{IfName, Packet};
    // Constant pools: this runs for every packet of every fuzz input.
    let at = |i: u32| match family {
        Family::Ipv4 => IpAddr::V4(PACKET_V4[i as usize % PACKET_V4.len()]),
        Family::Ipv6 => IpAddr::V6(PACKET_V6[i as usize % PACKET_V6.len()]),
    };
    let ports = [
        15001u16, 15006, 15008, 15090, 15020, 15021, 53, 80, 22, 8080, 32000,
    ];
    let port = |i: u32| {
        if i % 4 == 0 {
            (i >> 2) as u16
        } else {
            ports[i as usize % ports.len()]
        }
    };
    let ids = [0u32, 1000, 1337, 1_000_670_000, 3, 4];
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
    if !local {
        p.uid = 0;
        p.gid = 0;
        p.in_iface = Some(IfName::new(ifaces[s[10] as usize % ifaces.len()]));
    }
    if matches!(hook, Hook::Output | Hook::Postrouting | Hook::Forward) {
        p.out_iface = Some(IfName::new(ifaces[(s[10] >> 4) as usize % ifaces.len()]));
    }
    p.mark = [0, 0, 0x539, 0x111, s[11]][s[11] as usize % 5];
    p.ctstate = CONN_STATES[(s[11] >> 8) as usize % 4];
    (hook, p)
}
