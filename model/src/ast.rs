//! The typed model of a ruleset: families, tables, chains, rules, matches and targets.
//!
//! The model holds what the kernel holds after `iptables-restore`, in the normal form that
//! `iptables-save` prints: host bits of addresses cleared, marks as value/mask pairs, MARK and
//! CONNMARK operations reduced to `--set-xmark`, implicit protocol matches made explicit. Two inputs
//! that load the same kernel state therefore give equal models.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use crate::matches::{AddrType, CtState, IdSpec, Match, PortDir, StatisticMode, TcpFlags};

/// The address family of a table: `iptables` (IPv4) or `ip6tables` (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4, as `iptables` manages it.
    Ipv4,
    /// IPv6, as `ip6tables` manages it.
    Ipv6,
}

impl Family {
    /// The name of the save tool of this family (`iptables-save` or `ip6tables-save`).
    pub fn save_tool(self) -> &'static str {
        match self {
            Family::Ipv4 => "iptables-save",
            Family::Ipv6 => "ip6tables-save",
        }
    }
}

/// A whole ruleset: the IPv4 and the IPv6 tables of one network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Ruleset {
    /// The IPv4 tables, in the order `iptables-save` prints them.
    pub ipv4: Vec<Table>,
    /// The IPv6 tables, in the order `ip6tables-save` prints them.
    pub ipv6: Vec<Table>,
}

impl Ruleset {
    /// The tables of one family.
    pub fn tables(&self, family: Family) -> &[Table] {
        match family {
            Family::Ipv4 => &self.ipv4,
            Family::Ipv6 => &self.ipv6,
        }
    }

    /// The table `kind` of `family`, if the ruleset has it (the first, when several nftables
    /// tables play its part: [`Ruleset::table_at`]).
    pub fn table(&self, family: Family, kind: TableKind) -> Option<&Table> {
        self.table_at(family, kind, 0)
    }

    /// Which of the tables playing its part the `index`-th table of `family` is (0-based, see
    /// [`Ruleset::table_at`]).
    pub fn part_of(&self, family: Family, index: usize) -> u8 {
        let tables = self.tables(family);
        let Some(t) = tables.get(index) else { return 0 };
        let before = tables.get(..index).unwrap_or(&[]);
        u8::try_from(before.iter().filter(|o| o.kind == t.kind).count()).unwrap_or(u8::MAX)
    }

    /// The places (family, iptables table) where more than one table holds rules that capture
    /// connections (REDIRECT, TPROXY, DNAT): two backends, or two generations of one mesh's
    /// tables, both redirecting traffic. Each with those tables, oldest first.
    pub fn capture_in_several_tables(&self) -> Vec<(Family, TableKind, Vec<&Table>)> {
        let mut out = Vec::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            for kind in TableKind::SAVE_ORDER {
                let tables: Vec<&Table> = self
                    .tables(family)
                    .iter()
                    .filter(|t| t.kind == kind && t.captures())
                    .collect();
                if tables.len() > 1 {
                    out.push((family, kind, tables));
                }
            }
        }
        out
    }

    /// The `part`-th table of `family` that plays the part of iptables' table `kind` (0-based, in
    /// the order the tables were created: [`Ruleset::tables`]' order). An iptables ruleset has
    /// one table of a kind; an nftables one may have several at the same place, which the kernel
    /// runs newest first (docs/model-and-parser.md, "Several tables at one hook").
    pub fn table_at(&self, family: Family, kind: TableKind, part: u8) -> Option<&Table> {
        self.tables(family)
            .iter()
            .filter(|t| t.kind == kind)
            .nth(usize::from(part))
    }

    /// Number of rules over all tables and families.
    pub fn rule_count(&self) -> usize {
        self.ipv4
            .iter()
            .chain(&self.ipv6)
            .flat_map(|t| &t.chains)
            .map(|c| c.rules.len())
            .sum()
    }

    /// Replaces user and group names in `-m owner` by the ids `users` and `groups` give, as
    /// iptables does when it installs the rule on a node whose passwd/group databases have them.
    /// Returns the names neither map has (they stay names, which the evaluator cannot decide).
    pub fn resolve_owner_names(
        &mut self,
        users: &std::collections::BTreeMap<String, u32>,
        groups: &std::collections::BTreeMap<String, u32>,
    ) -> Vec<String> {
        let mut missing = Vec::new();
        let mut resolve =
            |spec: &mut Option<Neg<IdSpec>>, map: &std::collections::BTreeMap<String, u32>| {
                if let Some(n) = spec {
                    if let IdSpec::Name(name) = &n.value {
                        match map.get(name) {
                            Some(id) => n.value = IdSpec::Range { lo: *id, hi: *id },
                            None => {
                                if !missing.contains(name) {
                                    missing.push(name.clone());
                                }
                            }
                        }
                    }
                }
            };
        for t in self.ipv4.iter_mut().chain(self.ipv6.iter_mut()) {
            for c in &mut t.chains {
                for r in &mut c.rules {
                    for m in &mut r.matches {
                        if let Match::Owner(o) = m {
                            resolve(&mut o.uid, users);
                            resolve(&mut o.gid, groups);
                        }
                    }
                }
            }
        }
        missing
    }
}

/// The five iptables tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// `raw`: before connection tracking (CT, NOTRACK).
    Raw,
    /// `mangle`: packet and connection marks, TPROXY.
    Mangle,
    /// `nat`: consulted for the first packet of a connection (REDIRECT, DNAT, SNAT).
    Nat,
    /// `filter`: ACCEPT, DROP, REJECT.
    Filter,
    /// `security`: SELinux labels.
    Security,
}

impl TableKind {
    /// All tables, in the order `iptables-save` (nf_tables backend) prints them.
    pub const SAVE_ORDER: [TableKind; 5] = [
        TableKind::Mangle,
        TableKind::Security,
        TableKind::Raw,
        TableKind::Filter,
        TableKind::Nat,
    ];

    /// The table's name as iptables spells it.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Raw => "raw",
            TableKind::Mangle => "mangle",
            TableKind::Nat => "nat",
            TableKind::Filter => "filter",
            TableKind::Security => "security",
        }
    }

    /// Looks a table up by name.
    pub fn from_name(name: &str) -> Option<TableKind> {
        TableKind::SAVE_ORDER.into_iter().find(|t| t.name() == name)
    }

    /// The built-in chains of the table, in hook order (the order `iptables-save` lists them).
    pub fn builtin_chains(self) -> &'static [Hook] {
        use Hook::*;
        match self {
            TableKind::Raw => &[Prerouting, Output],
            TableKind::Mangle => &[Prerouting, Input, Forward, Output, Postrouting],
            TableKind::Nat => &[Prerouting, Input, Output, Postrouting],
            TableKind::Filter | TableKind::Security => &[Input, Forward, Output],
        }
    }
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A netfilter hook, which is also the name of a built-in chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "UPPERCASE")]
pub enum Hook {
    /// Packets arriving from an interface, before routing.
    Prerouting,
    /// Packets routed to a local socket.
    Input,
    /// Packets routed through the host.
    Forward,
    /// Locally generated packets.
    Output,
    /// Packets about to leave through an interface.
    Postrouting,
}

impl Hook {
    /// All hooks in kernel order.
    pub const ALL: [Hook; 5] = [
        Hook::Prerouting,
        Hook::Input,
        Hook::Forward,
        Hook::Output,
        Hook::Postrouting,
    ];

    /// The built-in chain's name.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
        }
    }

    /// Looks a hook up by its chain name.
    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }

    /// A bit for sets of hooks.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One table of one family.
///
/// An nftables table (`nft` is set) plays the part of the iptables table whose base chains sit
/// at the same hooks and priorities (`kind`, its *role*: a `type nat` chain at priority -100 is
/// nat's, `type filter` at -150 mangle's, at -300 raw's); an `inet` table is held by both
/// families, whole, each rule restricted to its family by [`Rule::family`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Table {
    /// Which table (for an nftables table: which iptables table's part it plays).
    pub kind: TableKind,
    /// Built-in chains in hook order, then user-defined chains sorted by name; an nftables
    /// table's chains in the order they were created (the order `nft list ruleset` prints).
    pub chains: Vec<Chain>,
    /// For a native nftables table: its family and name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nft: Option<NftTable>,
}

impl Table {
    /// Whether the table says that the pod has `family` (the table is held for it): an iptables
    /// or `ip`/`ip6` table does; an `inet` table, which both families pass, only when one of its
    /// rules reads a header of that family (`ip6 daddr …`). Istio writes `inet` tables with IPv6
    /// off too, and those hold no `ip6` expression.
    pub fn speaks_of(&self, family: Family) -> bool {
        match &self.nft {
            Some(n) if n.family == NftFamily::Inet => self
                .chains
                .iter()
                .flat_map(|c| &c.rules)
                .any(|r| r.family == Some(family)),
            _ => true,
        }
    }

    /// Whether some rule of the table captures connections (REDIRECT, TPROXY, DNAT).
    pub fn captures(&self) -> bool {
        self.chains.iter().flat_map(|c| &c.rules).any(|r| {
            matches!(
                r.target,
                Some(Target::Redirect { .. } | Target::Tproxy { .. } | Target::Dnat { .. })
            )
        })
    }

    /// Whether this is a table iptables-nft made, as `nft list ruleset` shows it: an `ip` or
    /// `ip6` table named as an iptables table, its base chains named as iptables' built-in
    /// chains (an iptables-save input's tables are iptables' by definition).
    pub fn is_iptables_nft(&self) -> bool {
        match &self.nft {
            None => true,
            Some(n) => {
                n.family != NftFamily::Inet
                    && n.name == self.kind.name()
                    && self
                        .chains
                        .iter()
                        .filter_map(|c| c.base.map(|b| (c, b)))
                        .all(|(c, b)| c.name == b.hook.name())
            }
        }
    }

    /// The table as messages name it: `nat`, or `inet istio-proxy-nat` for an nftables table.
    pub fn display_name(&self) -> String {
        match &self.nft {
            Some(n) => format!("{} {}", n.family.name(), n.name),
            None => self.kind.name().to_string(),
        }
    }
}

/// What makes a table a native nftables table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NftTable {
    /// The table's family.
    pub family: NftFamily,
    /// The table's name.
    pub name: String,
    /// Its place among the ruleset's nft tables, in the order they were created (the order `nft
    /// list ruleset` prints them, across families).
    #[serde(default)]
    pub seq: u32,
}

/// The nftables families the model runs (`arp`, `bridge` and `netdev` see no IP hooks of a pod).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "lowercase")]
pub enum NftFamily {
    /// `ip`: IPv4 only.
    Ip,
    /// `ip6`: IPv6 only.
    Ip6,
    /// `inet`: both.
    Inet,
}

impl NftFamily {
    /// The family as nft spells it.
    pub fn name(self) -> &'static str {
        match self {
            NftFamily::Ip => "ip",
            NftFamily::Ip6 => "ip6",
            NftFamily::Inet => "inet",
        }
    }

    /// Whether packets of `family` pass this family's hooks.
    pub fn holds(self, family: Family) -> bool {
        matches!(
            (self, family),
            (NftFamily::Inet, _) | (NftFamily::Ip, Family::Ipv4) | (NftFamily::Ip6, Family::Ipv6)
        )
    }
}

/// An nftables base chain's registration: `{ type T hook H priority P ; policy … ; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct BaseChain {
    /// `type`.
    pub ty: ChainType,
    /// `hook`.
    pub hook: Hook,
    /// `priority`, as a number.
    pub priority: i32,
}

/// The type of an nftables base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "lowercase")]
pub enum ChainType {
    /// `filter`.
    Filter,
    /// `nat`: consulted for a connection's first packet only.
    Nat,
    /// `route`: as filter, and the packet is routed again when it changed (output only).
    Route,
}

impl ChainType {
    /// The type as nft spells it.
    pub fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        }
    }
}

impl Table {
    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chain_index(name).and_then(|i| self.chains.get(i))
    }

    /// The index of the chain called `name` in [`Table::chains`].
    ///
    /// A parsed table holds its built-in chains first and then its user chains sorted by name
    /// (`iptables-save`'s order), so a user chain is found by binary search: a table of 100,000
    /// chains is looked up 100,000 times by the parser's checks and the encoder. A table built in
    /// another order falls back to a scan.
    pub fn chain_index(&self, name: &str) -> Option<usize> {
        let builtins = self.chains.iter().take_while(|c| c.is_builtin()).count();
        if let Some(i) = self
            .chains
            .iter()
            .take(builtins)
            .position(|c| c.name == name)
        {
            return Some(i);
        }
        let users = self.chains.get(builtins..).unwrap_or(&[]);
        if let Ok(i) = users.binary_search_by(|c| c.name.as_bytes().cmp(name.as_bytes())) {
            return Some(builtins + i);
        }
        self.chains.iter().position(|c| c.name == name)
    }
}

/// A chain: built-in (with a policy) or user-defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Chain {
    /// The chain's name.
    pub name: String,
    /// The policy of a built-in chain; `None` for a user-defined chain.
    pub policy: Option<Policy>,
    /// The chain's counters (`:NAME POLICY [packets:bytes]`).
    pub counters: Counters,
    /// The rules, in evaluation order.
    pub rules: Vec<Rule>,
    /// For an nftables base chain: where it is registered (its policy is [`Chain::policy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseChain>,
}

impl Chain {
    /// Whether this is a built-in chain (an nftables base chain).
    pub fn is_builtin(&self) -> bool {
        self.policy.is_some()
    }

    /// The hook a built-in or base chain is registered at.
    pub fn hook(&self) -> Option<Hook> {
        match self.base {
            Some(b) => Some(b.hook),
            None if self.is_builtin() => Hook::from_name(&self.name),
            None => None,
        }
    }
}

/// The policy of a built-in chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "UPPERCASE")]
pub enum Policy {
    /// Let the packet through.
    Accept,
    /// Drop the packet.
    Drop,
}

impl Policy {
    /// The policy as iptables spells it.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
        }
    }
}

/// Packet and byte counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Counters {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

impl Counters {
    /// Whether both counters are zero.
    pub fn is_zero(&self) -> bool {
        self.packets == 0 && self.bytes == 0
    }
}

/// Where a rule came from in its source text. Never part of equality: two rules that differ only
/// in where they were written are the same rule.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Origin {
    /// 1-based line of the source text, 0 when unknown.
    pub line: u32,
    /// Byte offset in that line of the target's name (or of the rule's command).
    pub start: u32,
    /// Byte offset just past it.
    pub end: u32,
}

impl PartialEq for Origin {
    fn eq(&self, _: &Origin) -> bool {
        true
    }
}
impl Eq for Origin {}

/// One rule: the matches that must all hold, and what happens then.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Rule {
    /// The rule's counters (`[packets:bytes]` in `iptables-save -c`).
    pub counters: Counters,
    /// `-s`.
    pub src: Option<Neg<Cidr>>,
    /// `-d`.
    pub dst: Option<Neg<Cidr>>,
    /// `-i`.
    pub in_iface: Option<Box<Neg<Iface>>>,
    /// `-o`.
    pub out_iface: Option<Box<Neg<Iface>>>,
    /// `-p`; `None` means any protocol.
    pub proto: Option<Neg<Protocol>>,
    /// `-f` (second and later fragments) or `! -f`.
    pub fragment: Option<bool>,
    /// The `-m` matches in order.
    pub matches: Vec<Match>,
    /// `-j` / `-g`; `None` for a rule that only counts.
    pub target: Option<Target>,
    /// The only family whose packets the rule can match: an nftables rule in an `inet` table
    /// that reads an IPv4 or IPv6 header field (the implicit `meta nfproto` dependency, or a
    /// written one). `None`: any family, as every iptables rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    /// How an nftables rule was written, for printing it back as `nft list ruleset` does.
    /// Never part of equality.
    #[serde(skip)]
    #[cfg_attr(feature = "arbitrary", arbitrary(default))]
    pub nft: Option<Box<crate::nft::Layout>>,
    /// Where the rule was written.
    #[serde(skip)]
    pub origin: Origin,
}

/// A value with an optional `!` in front.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Neg<T> {
    /// Whether the match is inverted (`!`).
    pub negated: bool,
    /// The value.
    pub value: T,
}

impl<T> Neg<T> {
    /// A value without `!`.
    pub fn pos(value: T) -> Neg<T> {
        Neg {
            negated: false,
            value,
        }
    }

    /// A value with `!` when `negated`.
    pub fn new(negated: bool, value: T) -> Neg<T> {
        Neg { negated, value }
    }
}

/// An address with a prefix length, host bits cleared (as the kernel stores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Cidr {
    /// The network address.
    pub addr: IpAddr,
    /// Prefix length: at most 32 for IPv4, 128 for IPv6.
    pub prefix: u8,
}

impl Cidr {
    /// A prefix with host bits cleared; `prefix` is clamped to the family's width.
    pub fn new(addr: IpAddr, prefix: u8) -> Cidr {
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.min(width);
        let addr = match addr {
            IpAddr::V4(a) => {
                let m = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(prefix))
                };
                IpAddr::V4((u32::from(a) & m).into())
            }
            IpAddr::V6(a) => {
                let m = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(prefix))
                };
                IpAddr::V6((u128::from(a) & m).into())
            }
        };
        Cidr { addr, prefix }
    }

    /// Whether `ip` lies in this prefix (an address of the other family never does).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let shift = 32u32.saturating_sub(u32::from(self.prefix));
                (u32::from(net) ^ u32::from(a))
                    .checked_shr(shift)
                    .unwrap_or(0)
                    == 0
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let shift = 128u32.saturating_sub(u32::from(self.prefix));
                (u128::from(net) ^ u128::from(a))
                    .checked_shr(shift)
                    .unwrap_or(0)
                    == 0
            }
            _ => false,
        }
    }

    /// Whether this prefix covers every address of its family.
    pub fn is_any(&self) -> bool {
        self.prefix == 0
    }
}

/// An interface name as `-i`/`-o` take it; a trailing `+` matches every name with that prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Iface(pub String);

impl Iface {
    /// Whether the interface called `name` matches this pattern.
    #[inline]
    pub fn matches(&self, name: &str) -> bool {
        self.matches_bytes(name.as_bytes())
    }

    /// [`Iface::matches`] on the name's bytes.
    #[inline]
    pub fn matches_bytes(&self, name: &[u8]) -> bool {
        let pat = self.0.as_bytes();
        match pat.split_last() {
            Some((b'+', prefix)) => name.starts_with(prefix),
            _ => pat == name,
        }
    }
}

/// An IP protocol number (`-p`); 0 (`all`) is represented by no `-p` at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Protocol(pub u8);

impl Protocol {
    /// TCP.
    pub const TCP: Protocol = Protocol(6);
    /// UDP.
    pub const UDP: Protocol = Protocol(17);
    /// ICMP.
    pub const ICMP: Protocol = Protocol(1);
    /// ICMPv6.
    pub const ICMPV6: Protocol = Protocol(58);
    /// SCTP.
    pub const SCTP: Protocol = Protocol(132);
    /// DCCP.
    pub const DCCP: Protocol = Protocol(33);

    /// Whether the protocol has ports (what REDIRECT and DNAT need to take a port).
    pub fn has_ports(self) -> bool {
        matches!(self.0, 6 | 17 | 33 | 132 | 136)
    }
}

/// An inclusive port range; a single port is a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port (≥ `lo`).
    pub hi: u16,
}

impl PortRange {
    /// One port.
    pub fn single(p: u16) -> PortRange {
        PortRange { lo: p, hi: p }
    }
    /// Whether `p` is in the range.
    pub fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
    /// Whether the range covers every port.
    pub fn is_any(&self) -> bool {
        self.lo == 0 && self.hi == u16::MAX
    }
}

/// A value with a mask, as `-m mark` and `-m connmark` compare them: `(mark & mask) == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MarkMask {
    /// The value compared.
    pub value: u32,
    /// The mask applied first.
    pub mask: u32,
}

/// An address range with an optional port range, as DNAT, SNAT take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NatRange {
    /// First address (none: keep the address, as `--to-destination :80` does).
    pub addr_lo: Option<IpAddr>,
    /// Last address, when a range.
    pub addr_hi: Option<IpAddr>,
    /// Ports, when given.
    pub ports: Option<PortRange>,
}

/// What a rule does when all its matches hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(tag = "target", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Target {
    /// Stop traversal of this table; the packet goes on.
    Accept,
    /// Drop the packet.
    Drop,
    /// Back to the calling chain (or the policy, in a built-in chain).
    Return,
    /// `-j CHAIN`: call a user chain.
    Jump {
        /// The chain called.
        chain: String,
    },
    /// `-g CHAIN`: continue in a user chain without coming back.
    Goto {
        /// The chain entered.
        chain: String,
    },
    /// `-j REJECT`: drop with an error reply.
    Reject {
        /// `--reject-with`, the family's default (`icmp-port-unreachable`,
        /// `icmp6-port-unreachable`) when the input named none.
        with: String,
    },
    /// `-j REDIRECT`: to the local machine, optionally to other ports.
    Redirect {
        /// `--to-ports`.
        ports: Option<PortRange>,
        /// `--random`.
        random: bool,
    },
    /// `-j TPROXY`: deliver to a local socket without changing the packet.
    Tproxy {
        /// `--on-port` (0: keep the destination port).
        on_port: u16,
        /// `--on-ip` (none: the unspecified address).
        on_ip: Option<IpAddr>,
        /// `--tproxy-mark value/mask`: `mark = (mark & !mask) ^ value`.
        mark: MarkMask,
    },
    /// `-j MARK`: `mark = (mark & !mask) ^ value` (every MARK option reduces to this).
    Mark(MarkMask),
    /// `-j CONNMARK --set-xmark`: `ctmark = (ctmark & !mask) ^ value`.
    ConnmarkSet(MarkMask),
    /// `-j CONNMARK --save-mark`: `ctmark = (ctmark & !ctmask) | (mark & nfmask)`.
    ConnmarkSave {
        /// `--nfmask`.
        nfmask: u32,
        /// `--ctmask`.
        ctmask: u32,
    },
    /// `-j CONNMARK --restore-mark`: `mark = (mark & !nfmask) | (ctmark & ctmask)`.
    ConnmarkRestore {
        /// `--nfmask`.
        nfmask: u32,
        /// `--ctmask`.
        ctmask: u32,
    },
    /// `-j CT`.
    Ct {
        /// `--notrack`.
        notrack: bool,
        /// `--zone`, `--zone-orig` or `--zone-reply`.
        zone: Option<CtZone>,
    },
    /// `-j NOTRACK`.
    Notrack,
    /// `-j DNAT --to-destination`.
    Dnat {
        /// The new destination.
        to: NatRange,
        /// `--random`.
        random: bool,
        /// `--persistent`.
        persistent: bool,
    },
    /// `-j SNAT --to-source`.
    Snat {
        /// The new source.
        to: NatRange,
        /// `--random`.
        random: bool,
        /// `--random-fully`.
        random_fully: bool,
        /// `--persistent`.
        persistent: bool,
    },
    /// `-j MASQUERADE`.
    Masquerade {
        /// `--to-ports`.
        ports: Option<PortRange>,
        /// `--random`.
        random: bool,
        /// `--random-fully`.
        random_fully: bool,
    },
    /// `-j LOG`: logs and goes on.
    Log {
        /// `--log-prefix`.
        prefix: Option<String>,
        /// `--log-level` (4 is the default and is not printed).
        level: u8,
        /// Flag options in print order: `--log-tcp-sequence`, `--log-tcp-options`,
        /// `--log-ip-options`, `--log-uid`, `--log-macdecode`.
        flags: Vec<String>,
    },
    /// `-j NFLOG`: logs through netlink and goes on.
    Nflog {
        /// `--nflog-prefix`.
        prefix: Option<String>,
        /// `--nflog-group`.
        group: u16,
        /// `--nflog-size`.
        size: Option<u32>,
        /// `--nflog-threshold`.
        threshold: Option<u16>,
    },
    /// A target the model does not interpret, kept verbatim.
    Unknown {
        /// The target's name after `-j`.
        name: String,
        /// Its arguments, as tokens.
        args: Vec<String>,
    },
}

/// The conntrack zone a CT target assigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CtZone {
    /// The zone id.
    pub id: u16,
    /// Which direction: `None` for both (`--zone`), `Some(true)` original, `Some(false)` reply.
    pub orig: Option<bool>,
}

impl Target {
    /// The target's name as it follows `-j` (the chain's name for a jump or goto).
    pub fn name(&self) -> &str {
        match self {
            Target::Accept => "ACCEPT",
            Target::Drop => "DROP",
            Target::Return => "RETURN",
            Target::Jump { chain } | Target::Goto { chain } => chain,
            Target::Reject { .. } => "REJECT",
            Target::Redirect { .. } => "REDIRECT",
            Target::Tproxy { .. } => "TPROXY",
            Target::Mark(_) => "MARK",
            Target::ConnmarkSet(_)
            | Target::ConnmarkSave { .. }
            | Target::ConnmarkRestore { .. } => "CONNMARK",
            Target::Ct { .. } => "CT",
            Target::Notrack => "NOTRACK",
            Target::Dnat { .. } => "DNAT",
            Target::Snat { .. } => "SNAT",
            Target::Masquerade { .. } => "MASQUERADE",
            Target::Log { .. } => "LOG",
            Target::Nflog { .. } => "NFLOG",
            Target::Unknown { name, .. } => name,
        }
    }

    /// Whether traversal goes on to the next rule after the target (MARK, CONNMARK, CT,
    /// NOTRACK, LOG, NFLOG, and a target the model does not know, which it takes as not
    /// deciding). A jump does not (control comes back only when the chain returns).
    pub fn continues(&self) -> bool {
        match self {
            Target::Mark(_)
            | Target::ConnmarkSet(_)
            | Target::ConnmarkSave { .. }
            | Target::ConnmarkRestore { .. }
            | Target::Ct { .. }
            | Target::Notrack
            | Target::Log { .. }
            | Target::Nflog { .. }
            | Target::Unknown { .. } => true,
            Target::Accept
            | Target::Drop
            | Target::Return
            | Target::Jump { .. }
            | Target::Goto { .. }
            | Target::Reject { .. }
            | Target::Redirect { .. }
            | Target::Tproxy { .. }
            | Target::Dnat { .. }
            | Target::Snat { .. }
            | Target::Masquerade { .. } => false,
        }
    }

    /// The chain a jump or goto enters.
    pub fn chain(&self) -> Option<&str> {
        match self {
            Target::Jump { chain } | Target::Goto { chain } => Some(chain),
            _ => None,
        }
    }
}

/// Whether a table part ([`Ruleset::table_at`]) is the first: serialised results leave such
/// parts out, so that an iptables ruleset's read as before.
#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
pub fn is_first_part(part: &u8) -> bool {
    *part == 0
}
