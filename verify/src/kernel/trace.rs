//! nftables tracing: every rule a flow's first packet hits, as the kernel evaluates it.
//!
//! iptables-nft keeps each iptables rule as one nftables rule (in table `ip TABLE` or `ip6
//! TABLE`, with a handle). The pod gets one table of the oracle's own, [`TRACE_TABLE`]: base
//! chains on prerouting and output at priority -500, before every iptables table, that set
//! `meta nftrace` on a connection's first packet only (a TCP segment with SYN and without ACK;
//! every UDP datagram, since a flow sends one and listeners never answer). A traced packet makes
//! the kernel send one netlink event (group `NFNLGRP_NFTRACE`) per rule whose expressions all
//! matched (type `rule`, or `return` for an explicit RETURN), per base chain whose policy applied
//! and per implicit return; the first event of each base-chain invocation carries the packet's
//! headers. Events are queued on the listening socket while the packet is being evaluated, so
//! once a flow is done its events are waiting.
//!
//! The pod's agent holds the socket ([`TraceSocket`]) and prints the events as lines
//! ([`TraceEvent`]'s `Display`/`FromStr`) when the oracle asks; the oracle maps each rule handle
//! back to a table, chain and rule number with `nft -j list ruleset` ([`HandleMap`]) and gives
//! the hits to flows by source port ([`attribute`]), which the oracle picks unique per flow.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use sidecar_model::pod::RuleRef;
use sidecar_model::{Family, Hook, TableKind};

/// The oracle's own nftables table in the pod.
pub const TRACE_TABLE: &str = "sv_trace";

/// The `nft -f` script that creates [`TRACE_TABLE`].
pub fn trace_table_script() -> String {
    let mark = "tcp flags & (syn | ack) == syn meta nftrace set 1\n\
                meta l4proto udp meta nftrace set 1\n";
    format!(
        "table inet {TRACE_TABLE} {{\n\
         chain pre {{ type filter hook prerouting priority -500; policy accept;\n{mark}}}\n\
         chain out {{ type filter hook output priority -500; policy accept;\n{mark}}}\n\
         }}\n"
    )
}

const NFNLGRP_NFTRACE: u32 = 9;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_TRACE: u16 = 17;
const NLMSG_OVERRUN: u16 = 4;

const NFTA_TRACE_TABLE: u16 = 1;
const NFTA_TRACE_CHAIN: u16 = 2;
const NFTA_TRACE_RULE_HANDLE: u16 = 3;
const NFTA_TRACE_TYPE: u16 = 4;
const NFTA_TRACE_ID: u16 = 6;
const NFTA_TRACE_NETWORK_HEADER: u16 = 8;
const NFTA_TRACE_TRANSPORT_HEADER: u16 = 9;

/// `NFT_TRACETYPE_POLICY`: a base chain's policy applied.
pub const TYPE_POLICY: u32 = 1;
/// `NFT_TRACETYPE_RETURN`: a RETURN (explicit, with a handle, or the end of a chain).
pub const TYPE_RETURN: u32 = 2;
/// `NFT_TRACETYPE_RULE`: a rule whose expressions all matched.
pub const TYPE_RULE: u32 = 3;

/// `NFPROTO_IPV4`, `NFPROTO_IPV6`: the families of iptables' and ip6tables' tables.
const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

/// The packet a trace event names (from the headers of the first event of a base chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TracedPacket {
    /// IP protocol (6, 17, …).
    pub proto: u8,
    /// Source address.
    pub src: IpAddr,
    /// Source port (0 without a TCP or UDP header).
    pub sport: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
}

/// One netlink trace event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// The kernel's trace id (per packet buffer and input interface).
    pub id: u32,
    /// The table's family (`NFPROTO_*`: 1 inet, 2 ip, 10 ip6).
    pub family: u8,
    /// `NFT_TRACETYPE_*`.
    pub kind: u32,
    /// The rule's handle, when the event is about a rule.
    pub handle: Option<u64>,
    /// The packet, on the first event of a base-chain invocation.
    pub packet: Option<TracedPacket>,
    /// The table's name.
    pub table: String,
    /// The chain's name.
    pub chain: String,
}

impl std::fmt::Display for TraceEvent {
    /// `ev ID FAMILY TYPE HANDLE|- PROTO,SRC,SPORT,DST,DPORT|- TABLE CHAIN` (the chain last: it
    /// is the only field a name with a space could be in).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ev {} {} {} ", self.id, self.family, self.kind)?;
        match self.handle {
            Some(h) => write!(f, "{h} ")?,
            None => f.write_str("- ")?,
        }
        match self.packet {
            Some(p) => write!(
                f,
                "{},{},{},{},{} ",
                p.proto, p.src, p.sport, p.dst, p.dport
            )?,
            None => f.write_str("- ")?,
        }
        write!(f, "{} {}", self.table, self.chain)
    }
}

impl std::str::FromStr for TraceEvent {
    type Err = String;
    fn from_str(s: &str) -> Result<TraceEvent, String> {
        let bad = || format!("bad trace line `{s}`");
        let mut it = s.splitn(8, ' ');
        if it.next() != Some("ev") {
            return Err(bad());
        }
        let mut field = || it.next().ok_or_else(bad);
        let id = field()?.parse().map_err(|_| bad())?;
        let family = field()?.parse().map_err(|_| bad())?;
        let kind = field()?.parse().map_err(|_| bad())?;
        let handle = match field()? {
            "-" => None,
            h => Some(h.parse().map_err(|_| bad())?),
        };
        let packet = match field()? {
            "-" => None,
            p => {
                let v: Vec<&str> = p.split(',').collect();
                let [proto, src, sport, dst, dport] = v.as_slice() else {
                    return Err(bad());
                };
                Some(TracedPacket {
                    proto: proto.parse().map_err(|_| bad())?,
                    src: src.parse().map_err(|_| bad())?,
                    sport: sport.parse().map_err(|_| bad())?,
                    dst: dst.parse().map_err(|_| bad())?,
                    dport: dport.parse().map_err(|_| bad())?,
                })
            }
        };
        let table = field()?.to_string();
        let chain = field()?.to_string();
        Ok(TraceEvent {
            id,
            family,
            kind,
            handle,
            packet,
            table,
            chain,
        })
    }
}

/// A netlink socket in the current network namespace that receives nftables trace events.
#[derive(Debug)]
pub struct TraceSocket {
    fd: OwnedFd,
}

impl TraceSocket {
    /// Opens and subscribes it. Needs CAP_NET_ADMIN.
    pub fn open() -> std::io::Result<TraceSocket> {
        use nix::sys::socket::{
            bind, setsockopt, socket, sockopt, AddressFamily, NetlinkAddr, SockFlag, SockProtocol,
            SockType,
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )?;
        // Room for many batches of events: a lost event would be a hit the kernel did not
        // report, so losses are detected (ENOBUFS) and fail the run rather than pass unnoticed.
        setsockopt(&fd, sockopt::RcvBufForce, &(64 << 20))?;
        bind(
            fd.as_raw_fd(),
            &NetlinkAddr::new(0, 1 << (NFNLGRP_NFTRACE - 1)),
        )?;
        Ok(TraceSocket { fd })
    }

    /// Every event queued so far. An error when events were lost.
    pub fn drain(&self) -> std::io::Result<Vec<TraceEvent>> {
        use nix::errno::Errno;
        use nix::sys::socket::{recv, MsgFlags};
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => parse_messages(buf.get(..n).unwrap_or(&[]), &mut out)?,
                Err(Errno::EAGAIN) => return Ok(out),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn u16_ne(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

fn nul_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or(b)).into_owned()
}

/// The protocol and addresses of an IP header.
fn ip_header(b: &[u8]) -> Option<(u8, IpAddr, IpAddr)> {
    match b.first()? >> 4 {
        4 => {
            let src: [u8; 4] = b.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = b.get(16..20)?.try_into().ok()?;
            Some((*b.get(9)?, IpAddr::from(src), IpAddr::from(dst)))
        }
        6 => {
            let src: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = b.get(24..40)?.try_into().ok()?;
            Some((*b.get(6)?, IpAddr::from(src), IpAddr::from(dst)))
        }
        _ => None,
    }
}

/// Parses the netlink messages of one datagram, appending the trace events.
pub fn parse_messages(mut b: &[u8], out: &mut Vec<TraceEvent>) -> std::io::Result<()> {
    while b.len() >= 16 {
        let len = u32_ne(b, 0)
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(0);
        let ty = u16_ne(b, 4).unwrap_or(0);
        if len < 16 || len > b.len() {
            break;
        }
        if ty == NLMSG_OVERRUN {
            return Err(std::io::Error::other("netlink overrun: trace events lost"));
        }
        if ty == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE {
            if let Some(ev) = parse_trace(b.get(16..len).unwrap_or(&[])) {
                out.push(ev);
            }
        }
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Ok(())
}

/// One `NFT_MSG_TRACE` message after its netlink header: `nfgenmsg`, then attributes.
fn parse_trace(b: &[u8]) -> Option<TraceEvent> {
    let family = *b.first()?;
    let mut ev = TraceEvent {
        id: 0,
        family,
        kind: 0,
        handle: None,
        packet: None,
        table: String::new(),
        chain: String::new(),
    };
    let mut net: Option<(u8, IpAddr, IpAddr)> = None;
    let mut ports = (0u16, 0u16);
    let mut at = 4;
    while let (Some(len), Some(ty)) = (u16_ne(b, at), u16_ne(b, at + 2)) {
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        let v = b.get(at + 4..at + len)?;
        match ty & 0x3fff {
            NFTA_TRACE_TABLE => ev.table = nul_str(v),
            NFTA_TRACE_CHAIN => ev.chain = nul_str(v),
            NFTA_TRACE_RULE_HANDLE => ev.handle = be_u64(v),
            NFTA_TRACE_TYPE => ev.kind = be_u32(v)?,
            NFTA_TRACE_ID => ev.id = be_u32(v)?,
            NFTA_TRACE_NETWORK_HEADER => net = ip_header(v),
            NFTA_TRACE_TRANSPORT_HEADER => {
                let p = |i: usize| {
                    v.get(i..i + 2)
                        .and_then(|x| x.try_into().ok())
                        .map(u16::from_be_bytes)
                };
                ports = (p(0).unwrap_or(0), p(2).unwrap_or(0));
            }
            _ => {}
        }
        at += (len + 3) & !3;
    }
    ev.packet = net.map(|(proto, src, dst)| TracedPacket {
        proto,
        src,
        sport: ports.0,
        dst,
        dport: ports.1,
    });
    Some(ev)
}

/// The rules of the pod's iptables tables by nftables handle.
#[derive(Debug, Clone, Default)]
pub struct HandleMap {
    /// (family, table, handle) → (chain, 1-based rule number).
    rules: HashMap<(u8, String, u64), (String, u32)>,
    /// (family, table, base chain) → its hook.
    hooks: HashMap<(u8, String, String), Hook>,
    /// (family, name) of a native nft table → per family of the model (IPv4, IPv6), the
    /// iptables table whose part it plays there and which of that part's tables it is
    /// ([`sidecar_model::Ruleset::table_at`]); an iptables table is named by its kind.
    nft_tables: HashMap<(u8, String), [Option<TablePart>; 2]>,
}

impl HandleMap {
    /// From `nft -j list ruleset`, which lists each chain's rules in order.
    pub fn from_json(text: &[u8]) -> Result<HandleMap, String> {
        let v: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| format!("nft -j list ruleset: {e}"))?;
        let items = v
            .get("nftables")
            .and_then(|x| x.as_array())
            .ok_or("nft -j list ruleset: no `nftables` array")?;
        let mut m = HandleMap::default();
        let mut position: HashMap<(u8, String, String), u32> = HashMap::new();
        let family = |o: &serde_json::Value| match o.get("family").and_then(|f| f.as_str()) {
            Some("ip") => Some(NFPROTO_IPV4),
            Some("ip6") => Some(NFPROTO_IPV6),
            Some("inet") => Some(NFPROTO_INET),
            _ => None,
        };
        let s = |o: &serde_json::Value, k: &str| {
            o.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
        };
        for it in items {
            if let Some(c) = it.get("chain") {
                let Some(f) = family(c) else { continue };
                let hook = c.get("hook").and_then(|h| h.as_str()).and_then(|h| {
                    Hook::ALL
                        .into_iter()
                        .find(|k| k.name().eq_ignore_ascii_case(h))
                });
                if let Some(h) = hook {
                    m.hooks.insert((f, s(c, "table"), s(c, "name")), h);
                }
            } else if let Some(r) = it.get("rule") {
                let Some(f) = family(r) else { continue };
                let Some(handle) = r.get("handle").and_then(|h| h.as_u64()) else {
                    continue;
                };
                let (table, chain) = (s(r, "table"), s(r, "chain"));
                let n = position
                    .entry((f, table.clone(), chain.clone()))
                    .or_insert(0);
                *n += 1;
                m.rules.insert((f, table, handle), (chain, *n));
            }
        }
        Ok(m)
    }

    /// Names the native nft tables of `rs`: the kernel's events name them by family and name,
    /// the model by the iptables table whose part each plays.
    pub fn with_nft_tables(mut self, rs: &sidecar_model::Ruleset) -> HandleMap {
        for (slot, fam) in [Family::Ipv4, Family::Ipv6].into_iter().enumerate() {
            let tables = rs.tables(fam);
            for (i, t) in tables.iter().enumerate() {
                let Some(n) = &t.nft else { continue };
                let f = match n.family {
                    sidecar_model::NftFamily::Ip => NFPROTO_IPV4,
                    sidecar_model::NftFamily::Ip6 => NFPROTO_IPV6,
                    sidecar_model::NftFamily::Inet => NFPROTO_INET,
                };
                let at = (t.kind, rs.part_of(fam, i));
                let e = self.nft_tables.entry((f, n.name.clone())).or_default();
                if let Some(x) = e.get_mut(slot) {
                    *x = Some(at);
                }
            }
        }
        self
    }
}

/// An iptables table's part and which of its tables ([`sidecar_model::Ruleset::table_at`]).
type TablePart = (TableKind, u8);

/// A rule hit as the kernel traced it: the family of its table, and the rule.
pub type KernelHit = (Family, RuleRef);

/// A traced packet that belongs to no flow of the batch, with its hits.
#[derive(Debug, Clone)]
pub struct Stray {
    /// The packet (as its first traced base chain saw it).
    pub packet: TracedPacket,
    /// Its hits.
    pub hits: Vec<KernelHit>,
}

/// Gives the rule hits of `events`, in order, to the flows whose source ports are `sports`.
///
/// An event without headers belongs to the packet of the last event with headers and the same
/// trace id; the hook is that of the base chain the event with headers was in. Hits whose
/// handle is not in `map` are named by handle with rule number 0, so that they show.
pub fn attribute(
    events: &[TraceEvent],
    map: &HandleMap,
    sports: &[u16],
) -> (Vec<Vec<KernelHit>>, Vec<Stray>) {
    let mut per_flow: Vec<Vec<KernelHit>> = vec![Vec::new(); sports.len()];
    let mut strays: Vec<Stray> = Vec::new();
    // Trace id → (flow index or stray index, hook).
    #[derive(Clone, Copy)]
    enum Owner {
        Flow(usize),
        Stray(usize),
    }
    // Trace id → (flow index or stray index, hook, the packet's family).
    let mut current: HashMap<u32, (Owner, Option<Hook>, Family)> = HashMap::new();
    for ev in events {
        if let Some(p) = ev.packet {
            let owner = match sports.iter().position(|&s| s == p.sport) {
                Some(i) => Owner::Flow(i),
                // A packet of the same buffer whose source port a rule changed stays with it.
                None => match current.get(&ev.id) {
                    Some((o, _, _)) => *o,
                    None => {
                        strays.push(Stray {
                            packet: p,
                            hits: Vec::new(),
                        });
                        Owner::Stray(strays.len() - 1)
                    }
                },
            };
            let hook = map
                .hooks
                .get(&(ev.family, ev.table.clone(), ev.chain.clone()))
                .copied()
                .or_else(|| Hook::from_name(&ev.chain));
            let fam = if p.src.is_ipv4() {
                Family::Ipv4
            } else {
                Family::Ipv6
            };
            current.insert(ev.id, (owner, hook, fam));
        }
        if ev.table == TRACE_TABLE || !(ev.kind == TYPE_RULE || ev.kind == TYPE_RETURN) {
            continue;
        }
        let Some(handle) = ev.handle else { continue };
        let Some(&(owner, hook, packet_family)) = current.get(&ev.id) else {
            continue;
        };
        let family = match ev.family {
            NFPROTO_IPV4 => Family::Ipv4,
            NFPROTO_IPV6 => Family::Ipv6,
            // An inet table's rule: the packet's family.
            NFPROTO_INET => packet_family,
            _ => continue,
        };
        let (chain, rule) = map
            .rules
            .get(&(ev.family, ev.table.clone(), handle))
            .cloned()
            .unwrap_or_else(|| (format!("{} (handle {handle})", ev.chain), 0));
        let slot = usize::from(family == Family::Ipv6);
        let (table, part) = match map.nft_tables.get(&(ev.family, ev.table.clone())) {
            Some(parts) => match parts.get(slot).copied().flatten() {
                Some(at) => at,
                None => continue,
            },
            None => match TableKind::from_name(&ev.table) {
                Some(k) => (k, 0),
                None => continue,
            },
        };
        let hit = RuleRef {
            table,
            part,
            chain,
            rule,
            // Every hit follows its base chain's event with headers; a missing hook would be a
            // base chain nft did not list, which cannot be.
            hook: hook.unwrap_or(Hook::Forward),
        };
        let list = match owner {
            Owner::Flow(i) => per_flow.get_mut(i),
            Owner::Stray(i) => strays.get_mut(i).map(|s| &mut s.hits),
        };
        if let Some(l) = list {
            l.push((family, hit));
        }
    }
    strays.retain(|s| !s.hits.is_empty());
    (per_flow, strays)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    #[test]
    fn event_lines_round_trip() {
        for ev in [
            TraceEvent {
                id: 0xdead_beef,
                family: 10,
                kind: TYPE_RULE,
                handle: Some(12),
                packet: Some(TracedPacket {
                    proto: 6,
                    src: "fd00::5".parse().unwrap(),
                    sport: 10001,
                    dst: "::1".parse().unwrap(),
                    dport: 80,
                }),
                table: "nat".into(),
                chain: "ISTIO_OUTPUT".into(),
            },
            TraceEvent {
                id: 1,
                family: 1,
                kind: TYPE_POLICY,
                handle: None,
                packet: None,
                table: "sv_trace".into(),
                chain: "odd name".into(),
            },
        ] {
            assert_eq!(ev.to_string().parse::<TraceEvent>().unwrap(), ev);
        }
    }

    fn attr(ty: u16, v: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&u16::try_from(v.len() + 4).unwrap().to_ne_bytes());
        a.extend_from_slice(&ty.to_ne_bytes());
        a.extend_from_slice(v);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    #[test]
    fn parses_a_trace_message() {
        let mut ipv4 = vec![0x45u8, 0, 0, 60, 0, 0, 0, 0, 64, 6, 0, 0];
        ipv4.extend_from_slice(&[10, 1, 0, 5, 127, 0, 0, 1]);
        let tcp = [0x27u8, 0x11, 0, 80, 0, 0, 0, 0];
        let mut body = vec![2u8, 0, 0, 0];
        body.extend(attr(NFTA_TRACE_TABLE, b"nat\0"));
        body.extend(attr(NFTA_TRACE_CHAIN, b"OUTPUT\0"));
        body.extend(attr(NFTA_TRACE_RULE_HANDLE, &7u64.to_be_bytes()));
        body.extend(attr(NFTA_TRACE_TYPE, &TYPE_RULE.to_be_bytes()));
        body.extend(attr(NFTA_TRACE_ID, &42u32.to_be_bytes()));
        body.extend(attr(NFTA_TRACE_NETWORK_HEADER, &ipv4));
        body.extend(attr(NFTA_TRACE_TRANSPORT_HEADER, &tcp));
        let mut msg = Vec::new();
        msg.extend_from_slice(&u32::try_from(body.len() + 16).unwrap().to_ne_bytes());
        msg.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE).to_ne_bytes());
        msg.extend_from_slice(&[0u8; 10]);
        msg.extend(body);
        let two = [msg.clone(), msg].concat();
        let mut out = Vec::new();
        parse_messages(&two, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        let ev = &out[0];
        assert_eq!(
            (ev.id, ev.family, ev.kind, ev.handle),
            (42, 2, TYPE_RULE, Some(7))
        );
        assert_eq!((ev.table.as_str(), ev.chain.as_str()), ("nat", "OUTPUT"));
        let p = ev.packet.unwrap();
        assert_eq!(
            (
                p.proto,
                p.src.to_string(),
                p.sport,
                p.dst.to_string(),
                p.dport
            ),
            (6, "10.1.0.5".into(), 10001, "127.0.0.1".into(), 80)
        );
    }
}
