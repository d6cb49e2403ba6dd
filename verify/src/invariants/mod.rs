//! The invariant catalog: what a sidecar's rules must guarantee, each with a stable id, a
//! one-line statement filled in with the profile's values, and one definition of its violation.
//!
//! The definition is written once against [`Dom`], a small vocabulary of facts about a
//! connection and its journey, and evaluated two ways: over Z3 terms ([`Symbolic`], a proof
//! over every connection) and over a concrete journey from the evaluator ([`Concrete`], for
//! sampling and for replaying every counterexample Z3 finds). A counterexample the evaluator
//! does not confirm means the SMT encoding is wrong, and `check` says so loudly.
//!
//! Two preconditions are deliberate and appear in the statements: a journey that starts at
//! the proxy's own capture listeners (destination port 15001 or 15006) is the proxy's business
//! (Istio's listeners black-hole those), so `no-redirect-loop` and `single-pass` range over the
//! other ports; outbound exclusions concern connections leaving the pod, so the outbound half of
//! `exclusions-respected` ranges over non-local destinations.

use std::net::IpAddr;

use ipnet::IpNet;
use sidecar_model::eval::Packet;
use sidecar_model::pod::{Delivery, HopVerdict, InboundSource, Journey, Outcome, Pod, Profile, LO};
use sidecar_model::{Family, Hook};
use z3::ast::Bool;

use crate::smt::{all, and2, any, bv, Encoder, SymHop, SymJourney, SymPacket, IF_BITS, IF_LO};

/// Facts about a connection (its first hop) and its journey, in some domain of truth values.
pub trait Dom {
    /// A truth value.
    type B: Clone;
    /// A constant.
    fn lit(&self, b: bool) -> Self::B;
    /// Conjunction.
    fn and(&self, v: Vec<Self::B>) -> Self::B;
    /// Disjunction.
    fn or(&self, v: Vec<Self::B>) -> Self::B;
    /// Negation.
    fn not(&self, b: Self::B) -> Self::B;
    /// The family of the connection.
    fn family(&self) -> Family;
    /// It arrives from outside (on eth0) instead of being opened here.
    fn outside(&self) -> Self::B;
    /// It is TCP.
    fn tcp(&self) -> Self::B;
    /// The opening process's uid is `v`.
    fn uid_is(&self, v: u32) -> Self::B;
    /// The opening process's gid is `v`.
    fn gid_is(&self, v: u32) -> Self::B;
    /// The source address is `a`.
    fn src_is(&self, a: IpAddr) -> Self::B;
    /// The source lies in `net`.
    fn src_in(&self, net: &IpNet) -> Self::B;
    /// The first packet's mark, masked with `mask`, equals `value & mask`.
    fn mark_is(&self, value: u32, mask: u32) -> Self::B;
    /// It arrives from outside on the interface `name`.
    fn in_iface(&self, name: &str) -> Self::B;
    /// The destination lies in `net`.
    fn dst_in(&self, net: &IpNet) -> Self::B;
    /// The destination is the pod's (loopback or a pod IP).
    fn dst_local(&self) -> Self::B;
    /// The destination is in the loopback range.
    fn dst_loopback(&self) -> Self::B;
    /// The source is the pod's (loopback or a pod IP).
    fn src_local(&self) -> Self::B;
    /// The destination port is `p`.
    fn dport_is(&self, p: u16) -> Self::B;
    /// The first packet leaves by lo.
    fn out_lo(&self) -> Self::B;
    /// The first hop was translated or taken by TPROXY (and not dropped).
    fn redirected(&self) -> Self::B;
    /// The first hop was delivered in the pod to `port`.
    fn delivered(&self, port: u16) -> Self::B;
    /// The journey loops (a hop state repeats, or the hop bound is passed).
    fn loops(&self) -> Self::B;
    /// Exactly `n` hops of the journey reach the proxy listener `port`.
    fn passes(&self, port: u16, n: u8) -> Self::B;

    /// The destination port is one of `ports`.
    fn dport_in(&self, ports: &[u16]) -> Self::B {
        self.or(ports.iter().map(|p| self.dport_is(*p)).collect())
    }
    /// The destination lies in one of `nets`.
    fn dst_in_any(&self, nets: &[IpNet]) -> Self::B {
        self.or(nets.iter().map(|n| self.dst_in(n)).collect())
    }
    /// The source lies in one of `nets`.
    fn src_in_any(&self, nets: &[IpNet]) -> Self::B {
        self.or(nets.iter().map(|n| self.src_in(n)).collect())
    }
    /// The opening process's gid is one of `gids`.
    fn gid_in(&self, gids: &[u32]) -> Self::B {
        self.or(gids.iter().map(|g| self.gid_is(*g)).collect())
    }
    /// It arrives from outside on one of the profile's virtual interfaces.
    fn virtual_in(&self, p: &Profile) -> Self::B {
        self.and(vec![
            self.outside(),
            self.or(p
                .virtual_interfaces
                .iter()
                .map(|i| self.in_iface(i))
                .collect()),
        ])
    }
    /// The connection is the proxy's: by mark when the profile identifies the proxy by mark,
    /// else by uid or gid.
    fn proxy(&self, p: &Profile) -> Self::B {
        match p.proxy_mark {
            Some(m) => self.mark_is(m, p.proxy_mark_mask),
            None => self.or(p
                .all_proxy_uids()
                .into_iter()
                .map(|u| self.uid_is(u))
                .chain(p.all_proxy_gids().into_iter().map(|g| self.gid_is(g)))
                .collect()),
        }
    }
}

/// The invariants, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Id {
    /// `proxy-not-recaptured`.
    ProxyNotRecaptured,
    /// `metrics-bypass`.
    MetricsBypass,
    /// `inbound-captured`.
    InboundCaptured,
    /// `outbound-captured`.
    OutboundCaptured,
    /// `passthrough-not-recaptured`.
    PassthroughNotRecaptured,
    /// `localhost-untouched`.
    LocalhostUntouched,
    /// `no-redirect-loop`.
    NoRedirectLoop,
    /// `single-pass`.
    SinglePass,
    /// `exclusions-respected`.
    ExclusionsRespected,
}

/// Every invariant, in report order.
pub const ALL: [Id; 9] = [
    Id::ProxyNotRecaptured,
    Id::MetricsBypass,
    Id::InboundCaptured,
    Id::OutboundCaptured,
    Id::PassthroughNotRecaptured,
    Id::LocalhostUntouched,
    Id::NoRedirectLoop,
    Id::SinglePass,
    Id::ExclusionsRespected,
];

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn opt_list<T: std::fmt::Display>(v: &Option<Vec<T>>) -> String {
    v.as_ref().map_or_else(|| "all".into(), |v| list(v))
}

impl Id {
    /// The stable id.
    pub fn name(self) -> &'static str {
        match self {
            Id::ProxyNotRecaptured => "proxy-not-recaptured",
            Id::MetricsBypass => "metrics-bypass",
            Id::InboundCaptured => "inbound-captured",
            Id::OutboundCaptured => "outbound-captured",
            Id::PassthroughNotRecaptured => "passthrough-not-recaptured",
            Id::LocalhostUntouched => "localhost-untouched",
            Id::NoRedirectLoop => "no-redirect-loop",
            Id::SinglePass => "single-pass",
            Id::ExclusionsRespected => "exclusions-respected",
        }
    }

    /// The id for a name.
    pub fn from_name(s: &str) -> Option<Id> {
        ALL.into_iter().find(|i| i.name() == s)
    }

    /// Whether the invariant looks past the first hop.
    pub fn needs_journey(self) -> bool {
        matches!(self, Id::NoRedirectLoop | Id::SinglePass)
    }

    /// The one-line statement, with the profile's values.
    pub fn statement(self, p: &Profile) -> String {
        let (u, g) = (list(&p.all_proxy_uids()), list(&p.all_proxy_gids()));
        let (who, non_proxy) = match p.proxy_mark {
            Some(m) => (
                format!("mark {m:#x}/{:#x}", p.proxy_mark_mask),
                format!("mark ≠ {m:#x}/{:#x}", p.proxy_mark_mask),
            ),
            None => (
                format!("uid {u}, or gid {g}"),
                format!("uid ≠ {u} and gid ≠ {g}"),
            ),
        };
        let groups = match (&p.outbound_gids, p.exclude_outbound_gids.is_empty()) {
            (None, true) => String::new(),
            (gids, _) => format!(
                " in groups {} excluding {}",
                opt_list(gids),
                list(&p.exclude_outbound_gids)
            ),
        };
        let virt = if p.virtual_interfaces.is_empty() {
            String::new()
        } else {
            format!(
                "; every TCP connection arriving on the virtual interfaces {} from a source not excluded, for a non-local destination in those addresses, is redirected to {}",
                list(&p.virtual_interfaces),
                p.outbound_port
            )
        };
        let inbound_where = if p.virtual_interfaces.is_empty() && p.exclude_inbound_cidrs.is_empty()
        {
            String::new()
        } else {
            format!(
                " (not on a virtual interface; sources excluded: {})",
                list(&p.exclude_inbound_cidrs)
            )
        };
        let (out, inb) = (p.outbound_port, p.inbound_port);
        let dns = p.dns_capture_port.map_or_else(String::new, |port| {
            format!(" (DNS, port 53, redirected to the proxy's DNS listener {port} aside)")
        });
        match self {
            Id::ProxyNotRecaptured => format!(
                "no connection opened by the proxy ({who}) is redirected to the outbound port {out}"
            ),
            Id::MetricsBypass if p.metrics_ports.is_empty() => {
                "the profile promises no metrics or health port (metrics_ports is empty): nothing to bypass".into()
            }
            Id::MetricsBypass => format!(
                "no inbound connection to {} is redirected; it reaches that port untouched",
                list(&p.metrics_ports)
            ),
            Id::InboundCaptured => format!(
                "every inbound TCP connection{inbound_where} to a port the profile does not exclude (captured: {}; excluded: {}) is redirected to {inb}",
                opt_list(&p.inbound_ports),
                list(&p.exclude_inbound_ports)
            ),
            Id::OutboundCaptured => format!(
                "every TCP connection opened by a non-proxy process ({non_proxy}){groups} to a non-local destination whose port and address the profile does not exclude (ports {} excluding {}; addresses {} excluding {}) is redirected to {out}{dns}{virt}",
                opt_list(&p.outbound_ports),
                list(&p.exclude_outbound_ports),
                opt_list(&p.outbound_cidrs),
                list(&p.exclude_outbound_cidrs)
            ),
            Id::PassthroughNotRecaptured => match p.inbound_source {
                InboundSource::Passthrough => format!(
                    "connections from {} / {} over lo are never redirected",
                    p.passthrough_v4, p.passthrough_v6
                ),
                InboundSource::Original => format!(
                    "the proxy's inbound re-connections (opened by the proxy ({who}) over lo from a non-local source, the client's own address) are never redirected"
                ),
            },
            Id::LocalhostUntouched => format!(
                "connections from non-proxy processes ({non_proxy}) to the loopback range are never redirected{dns}"
            ),
            Id::NoRedirectLoop => format!(
                "every journey not addressed to the proxy's capture ports {out} and {inb} ends (app, remote or drop) within {} hops; no hop state repeats",
                p.max_hops
            ),
            Id::SinglePass => format!(
                "an application's captured journey to a remote address passes {out} exactly once and {inb} never; a captured journey arriving from a remote address passes {inb} exactly once and {out} never (ports {out} and {inb} themselves aside)"
            ),
            Id::ExclusionsRespected => {
                let mut s = format!(
                    "excluded ports and ranges are never redirected: inbound ports {}; outbound ports {} and addresses {} (to non-local destinations){dns}",
                    list(&p.exclude_inbound_ports),
                    list(&p.exclude_outbound_ports),
                    list(&p.exclude_outbound_cidrs)
                );
                if !p.exclude_inbound_cidrs.is_empty() {
                    s.push_str(&format!(
                        "; inbound sources {}",
                        list(&p.exclude_inbound_cidrs)
                    ));
                }
                if !p.exclude_outbound_gids.is_empty() {
                    s.push_str(&format!(
                        "; outbound from groups {}",
                        list(&p.exclude_outbound_gids)
                    ));
                }
                s
            }
        }
    }

    /// The profile values the invariant uses, as `name = value` lines.
    pub fn uses(self, p: &Profile) -> Vec<String> {
        let mut proxy = match p.proxy_mark {
            Some(m) => vec![
                format!("proxy_mark = {m:#x}"),
                format!("proxy_mark_mask = {:#x}", p.proxy_mark_mask),
            ],
            None => vec![
                format!("proxy_uid = {}", p.proxy_uid),
                format!("proxy_gid = {}", p.proxy_gid),
            ],
        };
        if p.proxy_mark.is_none() && !p.proxy_uids.is_empty() {
            proxy.push(format!("proxy_uids = [{}]", list(&p.proxy_uids)));
        }
        if p.proxy_mark.is_none() && !p.proxy_gids.is_empty() {
            proxy.push(format!("proxy_gids = [{}]", list(&p.proxy_gids)));
        }
        let mut v = match self {
            Id::ProxyNotRecaptured => {
                let mut v = proxy;
                v.push(format!("outbound_port = {}", p.outbound_port));
                v
            }
            Id::MetricsBypass => vec![format!("metrics_ports = [{}]", list(&p.metrics_ports))],
            Id::InboundCaptured => vec![
                format!("inbound_port = {}", p.inbound_port),
                format!("inbound_ports = {}", opt_list(&p.inbound_ports)),
                format!(
                    "exclude_inbound_ports = [{}]",
                    list(&p.exclude_inbound_ports)
                ),
            ],
            Id::OutboundCaptured => {
                let mut v = proxy;
                v.extend([
                    format!("outbound_port = {}", p.outbound_port),
                    format!("outbound_ports = {}", opt_list(&p.outbound_ports)),
                    format!(
                        "exclude_outbound_ports = [{}]",
                        list(&p.exclude_outbound_ports)
                    ),
                    format!("outbound_cidrs = {}", opt_list(&p.outbound_cidrs)),
                    format!(
                        "exclude_outbound_cidrs = [{}]",
                        list(&p.exclude_outbound_cidrs)
                    ),
                ]);
                v
            }
            Id::PassthroughNotRecaptured => match p.inbound_source {
                InboundSource::Passthrough => vec![
                    format!("passthrough_v4 = {}", p.passthrough_v4),
                    format!("passthrough_v6 = {}", p.passthrough_v6),
                ],
                InboundSource::Original => {
                    let mut v = proxy;
                    v.push("inbound_source = original".into());
                    v
                }
            },
            Id::LocalhostUntouched => proxy,
            Id::NoRedirectLoop => vec![format!("max_hops = {}", p.max_hops)],
            Id::SinglePass => {
                let mut v = Id::OutboundCaptured.uses(p);
                v.extend(Id::InboundCaptured.uses(p));
                v
            }
            Id::ExclusionsRespected => vec![
                format!(
                    "exclude_inbound_ports = [{}]",
                    list(&p.exclude_inbound_ports)
                ),
                format!(
                    "exclude_outbound_ports = [{}]",
                    list(&p.exclude_outbound_ports)
                ),
                format!(
                    "exclude_outbound_cidrs = [{}]",
                    list(&p.exclude_outbound_cidrs)
                ),
            ],
        };
        let virt = !p.virtual_interfaces.is_empty()
            && matches!(
                self,
                Id::InboundCaptured
                    | Id::OutboundCaptured
                    | Id::SinglePass
                    | Id::MetricsBypass
                    | Id::ExclusionsRespected
            );
        if virt {
            v.push(format!(
                "virtual_interfaces = [{}]",
                list(&p.virtual_interfaces)
            ));
        }
        if !p.exclude_inbound_cidrs.is_empty()
            && matches!(
                self,
                Id::InboundCaptured | Id::SinglePass | Id::ExclusionsRespected
            )
        {
            v.push(format!(
                "exclude_inbound_cidrs = [{}]",
                list(&p.exclude_inbound_cidrs)
            ));
        }
        if matches!(self, Id::OutboundCaptured | Id::SinglePass) {
            if let Some(g) = &p.outbound_gids {
                v.push(format!("outbound_gids = [{}]", list(g)));
            }
        }
        if !p.exclude_outbound_gids.is_empty()
            && matches!(
                self,
                Id::OutboundCaptured | Id::SinglePass | Id::ExclusionsRespected
            )
        {
            v.push(format!(
                "exclude_outbound_gids = [{}]",
                list(&p.exclude_outbound_gids)
            ));
        }
        if p.inbound_source == InboundSource::Original && self.needs_journey() {
            v.push("inbound_source = original".into());
        }
        if let Some(port) = p.dns_capture_port {
            if matches!(
                self,
                Id::OutboundCaptured
                    | Id::LocalhostUntouched
                    | Id::SinglePass
                    | Id::ExclusionsRespected
            ) {
                v.push(format!("dns_capture_port = {port}"));
            }
        }
        v.dedup();
        v
    }

    /// The condition under which the connection violates the invariant.
    pub fn violation<D: Dom>(self, d: &D, p: &Profile) -> D::B {
        let proxy = d.proxy(p);
        let non_proxy = d.not(proxy.clone());
        let local = d.not(d.outside());
        let from_virtual = d.virtual_in(p);
        // From outside on an interface of the pod's own (not a VM's).
        let inbound = d.and(vec![d.outside(), d.not(from_virtual.clone())]);
        let capture_ports = [p.outbound_port, p.inbound_port];
        let inbound_pre = d.and(vec![
            inbound.clone(),
            d.not(d.src_in_any(&p.exclude_inbound_cidrs)),
            d.tcp(),
            d.dst_local(),
            p.inbound_ports
                .as_ref()
                .map_or_else(|| d.lit(true), |v| d.dport_in(v)),
            d.not(d.dport_in(&p.exclude_inbound_ports)),
        ]);
        // A DNS query the profile lets the proxy's DNS listener take.
        let dns_ok = p.dns_capture_port.map_or_else(
            || d.lit(false),
            |port| d.and(vec![d.dport_is(53), d.redirected(), d.delivered(port)]),
        );
        let local_outbound_pre = d.and(vec![
            local.clone(),
            d.not(dns_ok.clone()),
            d.tcp(),
            non_proxy.clone(),
            p.outbound_gids
                .as_ref()
                .map_or_else(|| d.lit(true), |v| d.gid_in(v)),
            d.not(d.gid_in(&p.exclude_outbound_gids)),
            d.not(d.dst_local()),
            p.outbound_ports
                .as_ref()
                .map_or_else(|| d.lit(true), |v| d.dport_in(v)),
            d.not(d.dport_in(&p.exclude_outbound_ports)),
            p.outbound_cidrs
                .as_ref()
                .map_or_else(|| d.lit(true), |v| d.dst_in_any(v)),
            d.not(d.dst_in_any(&p.exclude_outbound_cidrs)),
        ]);
        // A VM's connection through a virtual interface to a non-local destination is outbound
        // traffic of the pod's workload: the rules send its TCP to the outbound listener when
        // the destination is one the profile captures (istio-iptables applies `-i`/`-x` to it,
        // not the port and owner exclusions, which live in OUTPUT).
        let outbound_pre = d.or(vec![
            local_outbound_pre,
            d.and(vec![
                from_virtual,
                d.tcp(),
                d.not(d.src_in_any(&p.exclude_inbound_cidrs)),
                d.not(d.dst_local()),
                p.outbound_cidrs
                    .as_ref()
                    .map_or_else(|| d.lit(true), |v| d.dst_in_any(v)),
                d.not(d.dst_in_any(&p.exclude_outbound_cidrs)),
            ]),
        ]);
        match self {
            Id::ProxyNotRecaptured => d.and(vec![
                local,
                proxy,
                d.redirected(),
                d.delivered(p.outbound_port),
            ]),
            Id::MetricsBypass => {
                let per_port = p
                    .metrics_ports
                    .iter()
                    .map(|m| {
                        d.and(vec![
                            d.dport_is(*m),
                            d.not(d.and(vec![d.not(d.redirected()), d.delivered(*m)])),
                        ])
                    })
                    .collect();
                d.and(vec![
                    inbound.clone(),
                    d.tcp(),
                    d.dst_local(),
                    d.or(per_port),
                ])
            }
            Id::InboundCaptured => d.and(vec![
                inbound_pre,
                d.not(d.and(vec![d.redirected(), d.delivered(p.inbound_port)])),
            ]),
            Id::OutboundCaptured => d.and(vec![
                outbound_pre,
                d.not(d.and(vec![d.redirected(), d.delivered(p.outbound_port)])),
            ]),
            Id::PassthroughNotRecaptured => d.and(vec![
                local.clone(),
                match p.inbound_source {
                    InboundSource::Passthrough => d.src_is(p.passthrough(d.family())),
                    InboundSource::Original => d.and(vec![proxy, d.not(d.src_local())]),
                },
                d.out_lo(),
                d.redirected(),
            ]),
            Id::LocalhostUntouched => d.and(vec![
                local,
                non_proxy,
                d.dst_loopback(),
                d.redirected(),
                d.not(dns_ok),
            ]),
            Id::NoRedirectLoop => d.and(vec![d.not(d.dport_in(&capture_ports)), d.loops()]),
            Id::SinglePass => {
                let not_capture = d.not(d.dport_in(&capture_ports));
                let out_ok = d.and(vec![
                    d.passes(p.outbound_port, 1),
                    d.passes(p.inbound_port, 0),
                ]);
                let in_ok = d.and(vec![
                    d.passes(p.inbound_port, 1),
                    d.passes(p.outbound_port, 0),
                ]);
                d.and(vec![
                    not_capture,
                    d.or(vec![
                        d.and(vec![outbound_pre, d.not(out_ok)]),
                        d.and(vec![inbound_pre, d.not(in_ok)]),
                    ]),
                ])
            }
            Id::ExclusionsRespected => d.and(vec![
                d.redirected(),
                d.or(vec![
                    d.and(vec![
                        inbound,
                        d.or(vec![
                            d.dport_in(&p.exclude_inbound_ports),
                            d.and(vec![d.tcp(), d.src_in_any(&p.exclude_inbound_cidrs)]),
                        ]),
                    ]),
                    d.and(vec![
                        local,
                        d.not(d.dst_local()),
                        d.not(dns_ok),
                        d.or(vec![
                            d.dport_in(&p.exclude_outbound_ports),
                            d.dst_in_any(&p.exclude_outbound_cidrs),
                            d.gid_in(&p.exclude_outbound_gids),
                        ]),
                    ]),
                ]),
            ]),
        }
    }
}

/// The facts of a concrete journey (the evaluator's).
pub struct Concrete<'a> {
    /// Where the first packet entered.
    pub entry: Hook,
    /// The first packet.
    pub first: Packet,
    /// Its journey.
    pub journey: &'a Journey,
    /// The pod.
    pub pod: &'a Pod,
}

impl Concrete<'_> {
    fn hop1(&self) -> Option<&sidecar_model::pod::HopReport> {
        self.journey.hops.first()
    }
}

impl Dom for Concrete<'_> {
    type B = bool;
    fn lit(&self, b: bool) -> bool {
        b
    }
    fn and(&self, v: Vec<bool>) -> bool {
        v.into_iter().all(|b| b)
    }
    fn or(&self, v: Vec<bool>) -> bool {
        v.into_iter().any(|b| b)
    }
    fn not(&self, b: bool) -> bool {
        !b
    }
    fn family(&self) -> Family {
        self.first.family()
    }
    fn outside(&self) -> bool {
        self.entry != Hook::Output
    }
    fn tcp(&self) -> bool {
        self.first.proto == 6
    }
    fn uid_is(&self, v: u32) -> bool {
        self.first.uid == v
    }
    fn gid_is(&self, v: u32) -> bool {
        self.first.gid == v
    }
    fn src_is(&self, a: IpAddr) -> bool {
        self.first.src == a
    }
    fn src_in(&self, net: &IpNet) -> bool {
        net.contains(&self.first.src)
    }
    fn mark_is(&self, value: u32, mask: u32) -> bool {
        self.first.mark & mask == value & mask
    }
    fn in_iface(&self, name: &str) -> bool {
        self.entry != Hook::Output && self.first.in_iface.is_some_and(|i| i.as_str() == name)
    }
    fn dst_in(&self, net: &IpNet) -> bool {
        net.contains(&self.first.dst)
    }
    fn dst_local(&self) -> bool {
        self.pod.is_local(self.first.dst)
    }
    fn dst_loopback(&self) -> bool {
        self.first.dst.is_loopback()
    }
    fn src_local(&self) -> bool {
        self.pod.is_local(self.first.src)
    }
    fn dport_is(&self, p: u16) -> bool {
        self.first.dport == p
    }
    fn out_lo(&self) -> bool {
        self.first.out_iface.is_some_and(|i| i.as_str() == LO)
    }
    fn redirected(&self) -> bool {
        self.hop1().is_some_and(|h| {
            matches!(
                h.verdict,
                HopVerdict::Redirect(_) | HopVerdict::Dnat(_) | HopVerdict::Tproxy(_)
            )
        })
    }
    fn delivered(&self, port: u16) -> bool {
        self.hop1().is_some_and(
            |h| matches!(h.delivered_to, Delivery::Listener(p) | Delivery::App(p) if p == port),
        )
    }
    fn loops(&self) -> bool {
        self.journey.outcome == Outcome::Loop
    }
    fn passes(&self, port: u16, n: u8) -> bool {
        self.journey
            .hops
            .iter()
            .filter(|h| h.delivered_to == Delivery::Listener(port))
            .count()
            == usize::from(n)
    }
}

/// The facts of a symbolic journey (Z3 terms).
pub struct Symbolic<'a, 'e> {
    /// The encoder (family, pod, profile).
    pub enc: &'a Encoder<'e>,
    /// The first packet.
    pub first: &'a SymPacket,
    /// Whether it arrives from outside.
    pub outside: &'a Bool,
    /// The journey (its first hop is the connection's).
    pub journey: &'a SymJourney,
}

impl Symbolic<'_, '_> {
    fn hop1(&self) -> Option<&SymHop> {
        self.journey.hops.first()
    }
}

impl Dom for Symbolic<'_, '_> {
    type B = Bool;
    fn lit(&self, b: bool) -> Bool {
        Bool::from_bool(b)
    }
    fn and(&self, v: Vec<Bool>) -> Bool {
        all(&v)
    }
    fn or(&self, v: Vec<Bool>) -> Bool {
        any(&v)
    }
    fn not(&self, b: Bool) -> Bool {
        b.not()
    }
    fn family(&self) -> Family {
        self.enc.family
    }
    fn outside(&self) -> Bool {
        self.outside.clone()
    }
    fn tcp(&self) -> Bool {
        self.first.proto.eq(bv(6, 8))
    }
    fn uid_is(&self, v: u32) -> Bool {
        self.first.uid.eq(bv(u128::from(v), 32))
    }
    fn gid_is(&self, v: u32) -> Bool {
        self.first.gid.eq(bv(u128::from(v), 32))
    }
    fn src_is(&self, a: IpAddr) -> Bool {
        if a.is_ipv4() != (self.enc.family == Family::Ipv4) {
            return Bool::from_bool(false);
        }
        self.first.src.eq(self.enc.addr(a))
    }
    fn src_in(&self, net: &IpNet) -> Bool {
        self.enc
            .in_net(&self.first.src, net.network(), net.prefix_len())
    }
    fn mark_is(&self, value: u32, mask: u32) -> Bool {
        self.first
            .mark
            .bvand(bv(u128::from(mask), 32))
            .eq(bv(u128::from(value & mask), 32))
    }
    fn in_iface(&self, name: &str) -> Bool {
        self.enc.ifaces.index(name).map_or_else(
            || Bool::from_bool(false),
            |i| and2(self.outside, &self.first.iif.eq(bv(u128::from(i), IF_BITS))),
        )
    }
    fn dst_in(&self, net: &IpNet) -> Bool {
        self.enc
            .in_net(&self.first.dst, net.network(), net.prefix_len())
    }
    fn dst_local(&self) -> Bool {
        self.enc.is_local(&self.first.dst)
    }
    fn dst_loopback(&self) -> Bool {
        self.enc.is_loopback(&self.first.dst)
    }
    fn src_local(&self) -> Bool {
        self.enc.is_local(&self.first.src)
    }
    fn dport_is(&self, p: u16) -> Bool {
        self.first.dport.eq(bv(u128::from(p), 16))
    }
    fn out_lo(&self) -> Bool {
        self.first.oif.eq(bv(u128::from(IF_LO), IF_BITS))
    }
    fn redirected(&self) -> Bool {
        self.hop1()
            .map_or_else(|| Bool::from_bool(false), SymHop::redirected)
    }
    fn delivered(&self, port: u16) -> Bool {
        self.hop1()
            .map_or_else(|| Bool::from_bool(false), |h| h.delivered_local(port))
    }
    fn loops(&self) -> Bool {
        self.journey.looped.clone()
    }
    fn passes(&self, port: u16, n: u8) -> Bool {
        self.journey.passes(port, n, self.enc.profile)
    }
}
