//! The pod around the rules: its addresses and routing, the mesh profile (the proxy's identity,
//! ports and passthrough source), and *journeys*: a connection followed through the rules, into
//! a proxy listener, and through the connections the proxy opens in turn, until it reaches an
//! application, a remote address, or a drop.
//!
//! Routing (a sidecar pod has lo and eth0): a destination in the loopback range or equal to a pod
//! IP is local and leaves by lo, from 127.0.0.1 (loopback destinations) or the pod IP; anything
//! else leaves by eth0 from the pod IP. A bound source overrides the choice of source. A
//! locally generated packet runs OUTPUT then POSTROUTING; when it leaves by lo it comes back in
//! through PREROUTING and INPUT without a second nat decision (its connection has its NAT
//! bindings already). A packet from outside runs PREROUTING, then INPUT if it is for the pod.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::ast::*;
use crate::eval::{Engine, Hit, HookVerdict, IfName, Packet, Scratch, Trace};

// The mesh profile is the pod's too: `pod::Profile` is where most callers look for it.
pub use crate::profile::{Credential, Identity, InboundSource, PodLocalProxy, Profile};

/// The pod: its addresses (besides the loopback ranges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    /// The pod's IPs, IPv4 and/or IPv6; the first of each family is the primary.
    pub ips: Vec<IpAddr>,
}

impl Default for Pod {
    fn default() -> Pod {
        Pod {
            ips: vec![IpAddr::V4(Ipv4Addr::new(10, 1, 0, 5))],
        }
    }
}

/// The loopback interface.
pub const LO: &str = "lo";
/// The pod's network interface.
pub const ETH0: &str = "eth0";

impl Pod {
    /// A pod with these addresses (the default 10.1.0.5 when empty).
    pub fn new(ips: &[IpAddr]) -> Pod {
        if ips.is_empty() {
            Pod::default()
        } else {
            Pod { ips: ips.to_vec() }
        }
    }

    /// Whether `a` is the pod's: a loopback address or a pod IP.
    pub fn is_local(&self, a: IpAddr) -> bool {
        a.is_loopback() || self.ips.contains(&a)
    }

    /// The pod's primary address of `a`'s family.
    pub fn primary(&self, family: Family) -> Option<IpAddr> {
        self.ips
            .iter()
            .find(|ip| (family == Family::Ipv4) == ip.is_ipv4())
            .copied()
    }

    /// The route of a locally generated packet: (out interface, source address).
    pub fn route(&self, dst: IpAddr, bound_src: Option<IpAddr>) -> (&'static str, IpAddr) {
        let fam = if dst.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        let loopback = if dst.is_ipv4() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        };
        if dst.is_loopback() {
            (LO, bound_src.unwrap_or(loopback))
        } else if self.ips.contains(&dst) {
            (LO, bound_src.unwrap_or(dst))
        } else {
            (
                ETH0,
                bound_src.or_else(|| self.primary(fam)).unwrap_or(loopback),
            )
        }
    }
}

/// A connection to follow: who opens it, from where, to where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// `tcp` (6) or `udp` (17).
    pub proto: u8,
    /// A bound source address (`--src`); for a connection from outside, the remote peer.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// The opening process's uid (ignored from outside).
    pub uid: u32,
    /// The opening process's gid.
    pub gid: u32,
    /// The first packet arrives from a remote peer (on eth0, or `iface`) instead of being
    /// generated here.
    pub from_outside: bool,
    /// The socket's mark (SO_MARK) of a connection generated here; 0 for none.
    #[serde(default)]
    pub mark: u32,
    /// From outside: the interface it arrives on (None: eth0), e.g. a virtual interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<IfName>,
}

impl Connection {
    /// A TCP connection generated here by `uid`/`gid`, without mark, source chosen by routing.
    pub fn tcp(dst: IpAddr, sport: u16, dport: u16, uid: u32, gid: u32) -> Connection {
        Connection {
            proto: 6,
            src: None,
            dst,
            sport,
            dport,
            uid,
            gid,
            from_outside: false,
            mark: 0,
            iface: None,
        }
    }
}

/// A rule hit with names, as `iptables -L --line-numbers` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleRef {
    /// The table.
    pub table: TableKind,
    /// The chain's name.
    pub chain: String,
    /// 1-based rule number.
    pub rule: u32,
    /// The hook whose traversal hit it.
    pub hook: Hook,
}

/// What the rules did to a hop's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HopVerdict {
    /// Let through unchanged.
    Accept,
    /// Redirected to a local port (REDIRECT, or DNAT to a local address).
    Redirect(u16),
    /// Translated to another destination.
    Dnat(std::net::SocketAddr),
    /// Handed to a local socket by TPROXY.
    Tproxy(u16),
    /// Dropped.
    Drop,
    /// Rejected.
    Reject,
}

/// Where a hop's connection arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// A proxy port in the pod.
    Listener(u16),
    /// Any other port in the pod.
    App(u16),
    /// Out of the pod, to this address.
    Remote(std::net::SocketAddr),
    /// Nowhere: dropped or rejected.
    Dropped,
}

/// One connection of a journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopReport {
    /// Where the connection's first packet entered: OUTPUT (locally generated) or PREROUTING.
    pub hook: Hook,
    /// The first packet as it entered.
    pub packet: Packet,
    /// Every rule hit, in order, over all hooks the packet crossed.
    pub matched: Vec<RuleRef>,
    /// Rules whose matches the model could not decide (taken as not matching).
    pub undecided: Vec<RuleRef>,
    /// What the rules did.
    pub verdict: HopVerdict,
    /// Where it arrived.
    pub delivered_to: Delivery,
    /// The destination the receiving socket sees as original (SO_ORIGINAL_DST).
    pub original_dst: std::net::SocketAddr,
}

impl HopReport {
    /// The connection that reproduces this hop: its first packet's addresses, ports, owner and
    /// protocol, with the source bound as it was.
    pub fn connection(&self) -> Connection {
        let p = self.packet;
        Connection {
            proto: p.proto,
            src: Some(p.src),
            dst: p.dst,
            sport: p.sport,
            dport: p.dport,
            uid: p.uid,
            gid: p.gid,
            from_outside: self.hook != Hook::Output,
            mark: if self.hook == Hook::Output { p.mark } else { 0 },
            iface: if self.hook == Hook::Output {
                None
            } else {
                p.in_iface.filter(|i| i.as_str() != ETH0)
            },
        }
    }
}

/// How a journey ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// At a socket in the pod that serves it (an application, or the proxy's own servers).
    App,
    /// Out of the pod.
    Remote,
    /// Dropped or rejected.
    Drop,
    /// A hop state repeated, or the hop bound was reached.
    Loop,
}

/// A connection followed hop by hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journey {
    /// The hops in order.
    pub hops: Vec<HopReport>,
    /// How it ended.
    pub outcome: Outcome,
}

/// Follows connections through a ruleset in a pod.
#[derive(Debug, Clone)]
pub struct Simulator {
    engine: Engine,
    /// The pod.
    pub pod: Pod,
    /// The mesh profile.
    pub profile: Profile,
    /// Service addresses the proxy resolves to an endpoint when it re-connects from the outbound
    /// listener: (service VIP and port, endpoint address and port).
    pub services: Vec<(std::net::SocketAddr, std::net::SocketAddr)>,
}

impl Simulator {
    /// A simulator for `rs` in `pod` with `profile`.
    pub fn new(rs: &Ruleset, pod: Pod, profile: Profile) -> Simulator {
        let engine = Engine::new(&profile.resolve_names(rs)).with_local_addrs(&pod.ips);
        Simulator {
            engine,
            pod,
            profile,
            services: Vec::new(),
        }
    }

    /// The evaluation engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn name_hits(&self, family: Family, hook: Hook, hits: &[Hit], out: &mut Vec<RuleRef>) {
        for h in hits {
            let chain = self
                .engine
                .table(family, h.table)
                .and_then(|t| t.chains.get(h.chain as usize))
                .map(|c| c.name.clone())
                .unwrap_or_default();
            out.push(RuleRef {
                table: h.table,
                chain,
                rule: h.rule + 1,
                hook,
            });
        }
    }

    /// The first packet of `c` as it enters the pod's netfilter.
    pub fn first_packet(&self, c: &Connection) -> (Hook, Packet) {
        let peer = if c.dst.is_ipv4() {
            self.profile.remote_peer
        } else {
            IpAddr::V6(self.profile.remote_peer_v6)
        };
        let mut p = Packet::tcp_out(c.src.unwrap_or(peer), c.dst, c.sport, c.dport, c.uid, c.gid);
        p.proto = c.proto;
        p.tcp_flags = if c.proto == 6 { 0x02 } else { 0 };
        if c.from_outside {
            p.has_socket = false;
            p.uid = 0;
            p.gid = 0;
            p.in_iface = Some(c.iface.unwrap_or_else(|| IfName::new(ETH0)));
            (Hook::Prerouting, p)
        } else {
            p.mark = c.mark;
            let (out, src) = self.pod.route(c.dst, c.src);
            p.src = src;
            p.out_iface = Some(IfName::new(out));
            (Hook::Output, p)
        }
    }

    /// Runs one connection's first packet through the pod.
    pub fn hop(&self, c: &Connection) -> HopReport {
        let (entry, p) = self.first_packet(c);
        self.hop_packet(entry, p)
    }

    /// Runs a first packet through the pod as it is given, entering at `entry` (OUTPUT for a
    /// locally generated packet, whose out interface is already chosen; PREROUTING for one from
    /// outside). [`Simulator::hop`] builds the packet by routing; this takes any header, also
    /// ones routing never produces.
    pub fn hop_packet(&self, entry: Hook, mut p: Packet) -> HopReport {
        let entered = p;
        let fam = p.family();
        let original_dst = std::net::SocketAddr::new(p.dst, p.dport);
        let mut scratch = Scratch::default();
        let mut matched = Vec::new();
        let mut undecided = Vec::new();
        let mut tproxy = None;
        let mut dnat = false;
        let mut dropped = None;

        let mut run = |hook: Hook,
                       p: &mut Packet,
                       skip_nat: bool,
                       matched: &mut Vec<RuleRef>,
                       undecided: &mut Vec<RuleRef>| {
            let mut t = Trace::default();
            let (v, fx) = self
                .engine
                .run_hook_opts(hook, p, &mut scratch, &mut t, skip_nat);
            self.name_hits(fam, hook, &t.hits, matched);
            self.name_hits(fam, hook, &t.undecided, undecided);
            (v, fx)
        };

        let mut local_delivery = false;
        if entry == Hook::Output {
            let (v, fx) = run(Hook::Output, &mut p, false, &mut matched, &mut undecided);
            dnat |= fx.dnat;
            if v != HookVerdict::Accept {
                dropped = Some(v);
            } else {
                if fx.dnat {
                    // Rerouted after the destination changed; the source stays as bound.
                    let (out, _) = self.pod.route(p.dst, Some(p.src));
                    p.out_iface = Some(IfName::new(out));
                }
                let (v, _) = run(
                    Hook::Postrouting,
                    &mut p,
                    false,
                    &mut matched,
                    &mut undecided,
                );
                if v != HookVerdict::Accept {
                    dropped = Some(v);
                } else if p.out_iface.is_some_and(|i| i.as_str() == LO) {
                    // Looped back: in through lo, no second nat decision.
                    p.in_iface = Some(IfName::new(LO));
                    p.out_iface = None;
                    let (v, fx) = run(Hook::Prerouting, &mut p, true, &mut matched, &mut undecided);
                    tproxy = fx.tproxy;
                    if v != HookVerdict::Accept {
                        dropped = Some(v);
                    } else {
                        local_delivery = true;
                    }
                }
            }
        } else {
            let (v, fx) = run(
                Hook::Prerouting,
                &mut p,
                false,
                &mut matched,
                &mut undecided,
            );
            dnat |= fx.dnat;
            tproxy = fx.tproxy;
            if v != HookVerdict::Accept {
                dropped = Some(v);
            } else if tproxy.is_some() || self.pod.is_local(p.dst) {
                local_delivery = true;
            } else {
                // A pod does not forward.
                dropped = Some(HookVerdict::Drop);
            }
        }
        if local_delivery {
            p.out_iface = None;
            let (v, _) = run(
                Hook::Input,
                &mut p,
                entry == Hook::Output,
                &mut matched,
                &mut undecided,
            );
            if v != HookVerdict::Accept {
                dropped = Some(v);
            }
        }

        let (verdict, delivered_to) = match dropped {
            Some(HookVerdict::Reject) => (HopVerdict::Reject, Delivery::Dropped),
            Some(_) => (HopVerdict::Drop, Delivery::Dropped),
            None => {
                let port = tproxy.map_or(p.dport, |(port, _)| port);
                let delivery = if local_delivery {
                    if self.profile.proxy_ports.contains(&port) {
                        Delivery::Listener(port)
                    } else {
                        Delivery::App(port)
                    }
                } else {
                    Delivery::Remote(std::net::SocketAddr::new(p.dst, p.dport))
                };
                let verdict = if let Some((port, _)) = tproxy {
                    HopVerdict::Tproxy(port)
                } else if dnat && local_delivery {
                    HopVerdict::Redirect(p.dport)
                } else if dnat {
                    HopVerdict::Dnat(std::net::SocketAddr::new(p.dst, p.dport))
                } else {
                    HopVerdict::Accept
                };
                (verdict, delivery)
            }
        };
        HopReport {
            hook: entry,
            packet: entered,
            matched,
            undecided,
            verdict,
            delivered_to,
            original_dst,
        }
    }

    /// Follows `c` through the proxy's re-connections until it ends.
    pub fn journey(&self, c: &Connection) -> Journey {
        let (entry, p) = self.first_packet(c);
        self.journey_packet(entry, p)
    }

    /// [`Simulator::journey`] from a first packet given as it is (see [`Simulator::hop_packet`]);
    /// the proxy's re-connections are routed as usual.
    pub fn journey_packet(&self, entry: Hook, first: Packet) -> Journey {
        let mut hops: Vec<HopReport> = Vec::new();
        // A hop's state: where it enters, its addresses, port, owner and mark.
        let mut seen: Vec<(Hook, IpAddr, IpAddr, u16, u32, u32, u32)> = Vec::new();
        let mut conn = Connection {
            proto: first.proto,
            src: Some(first.src),
            dst: first.dst,
            sport: first.sport,
            dport: first.dport,
            uid: first.uid,
            gid: first.gid,
            from_outside: entry != Hook::Output,
            mark: first.mark,
            iface: first.in_iface,
        };
        loop {
            let hop = if hops.is_empty() {
                self.hop_packet(entry, first)
            } else {
                self.hop(&conn)
            };
            let p = hop.packet;
            let key = (hop.hook, p.src, p.dst, p.dport, p.uid, p.gid, p.mark);
            let repeated = seen.contains(&key);
            seen.push(key);
            let delivered = hop.delivered_to;
            let orig = hop.original_dst;
            hops.push(hop);
            if repeated || hops.len() > self.profile.max_hops {
                return Journey {
                    hops,
                    outcome: Outcome::Loop,
                };
            }
            let fam = if orig.is_ipv4() {
                Family::Ipv4
            } else {
                Family::Ipv6
            };
            let next_sport = 40000u16.saturating_add(u16::try_from(hops.len()).unwrap_or(0));
            conn = match delivered {
                Delivery::Dropped => {
                    return Journey {
                        hops,
                        outcome: Outcome::Drop,
                    }
                }
                Delivery::Remote(_) => {
                    return Journey {
                        hops,
                        outcome: Outcome::Remote,
                    }
                }
                Delivery::App(_) => {
                    return Journey {
                        hops,
                        outcome: Outcome::App,
                    }
                }
                Delivery::Listener(port) if port == self.profile.outbound_port => {
                    let to = self
                        .services
                        .iter()
                        .find(|(vip, _)| *vip == orig)
                        .map_or(orig, |(_, ep)| *ep);
                    Connection {
                        proto: conn.proto,
                        src: None,
                        dst: to.ip(),
                        sport: next_sport,
                        dport: to.port(),
                        uid: self.profile.proxy_uid,
                        gid: self.profile.proxy_gid,
                        from_outside: false,
                        mark: self.profile.reconnect_mark(),
                        iface: None,
                    }
                }
                Delivery::Listener(port) if port == self.profile.inbound_port => Connection {
                    proto: conn.proto,
                    src: Some(match self.profile.inbound_source {
                        InboundSource::Passthrough => self.profile.passthrough(fam),
                        InboundSource::Original => p.src,
                    }),
                    dst: orig.ip(),
                    sport: next_sport,
                    dport: orig.port(),
                    uid: self.profile.proxy_uid,
                    gid: self.profile.proxy_gid,
                    from_outside: false,
                    mark: self.profile.reconnect_mark(),
                    iface: None,
                },
                Delivery::Listener(_) => {
                    // The proxy's own servers (admin, metrics, health, DNS) answer themselves.
                    return Journey {
                        hops,
                        outcome: Outcome::App,
                    };
                }
            };
        }
    }
}
