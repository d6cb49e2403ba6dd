//! The concrete evaluator: what a ruleset does to one packet, as Linux netfilter does it.
//!
//! A hook runs its tables in kernel priority order (raw → mangle → nat → filter → security on
//! OUTPUT; raw → mangle → nat on PREROUTING; mangle → nat on POSTROUTING; mangle → filter →
//! security → nat on INPUT). Within a table, rules are tried in order; a rule whose matches all
//! hold is a *hit* (what the kernel's per-rule packet counter counts) and its target decides:
//! ACCEPT ends the table, DROP/REJECT the packet, RETURN pops (or applies a built-in chain's
//! policy), a jump pushes, a goto replaces the current frame, MARK/CONNMARK/CT/LOG/NFLOG go on,
//! REDIRECT/DNAT/SNAT/MASQUERADE rewrite and end the table, TPROXY assigns a local socket. The nat
//! table is consulted only for the first packet of a tracked connection.
//!
//! Traversal uses an explicit stack (a ruleset with 10,000 nested chains cannot overflow the
//! thread's stack) kept in a reusable [`Scratch`]; with [`NoTrace`] nothing is allocated per
//! evaluation once the scratch has grown.
//!
//! # Example
//! ```
//! use sidecar_model::eval::{Engine, Packet, Scratch, Trace};
//! use sidecar_model::{parse, Hook};
//! let rs = parse("x", sidecar_model::DEFAULT_RULESET.as_bytes()).unwrap().ruleset;
//! let engine = Engine::new(&rs);
//! let mut p = Packet::tcp_out("10.1.0.5".parse().unwrap(), "10.1.0.99".parse().unwrap(), 40000, 80, 1000, 1000);
//! p.out_iface = Some("eth0".into());
//! let mut trace = Trace::default();
//! let r = engine.run_hook(Hook::Output, &mut p, &mut Scratch::default(), &mut trace);
//! assert_eq!(p.dport, 15001); // redirected to the proxy's outbound listener
//! assert_eq!(trace.hits.len(), 3); // nat OUTPUT 1, ISTIO_OUTPUT 9, ISTIO_REDIRECT 1
//! # let _ = r;
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::ast::*;
use crate::matches::Env;

mod compile;
mod index;

use compile::{compile_table, CChain, CRule};
pub use index::{IndexStats, DEFAULT_INDEX_MIN};

/// An interface name stored inline (at most 15 bytes, as the kernel allows), so packets are
/// `Copy` and evaluation never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfName {
    /// The name's bytes, zero-padded to 15, then its length.
    raw: [u8; 16],
}

impl IfName {
    /// The name; longer names are cut at 15 bytes (on a character boundary).
    pub fn new(name: &str) -> IfName {
        let mut end = name.len().min(15);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut raw = [0u8; 16];
        if let (Some(dst), Some(src)) = (raw.get_mut(..end), name.as_bytes().get(..end)) {
            dst.copy_from_slice(src);
        }
        if let Some(l) = raw.get_mut(15) {
            *l = u8::try_from(end).unwrap_or(15);
        }
        IfName { raw }
    }

    /// The name as one number: its bytes, zero-padded, then its length in the last byte.
    #[inline(always)]
    pub fn key(&self) -> u128 {
        u128::from_le_bytes(self.raw)
    }

    fn len(&self) -> usize {
        usize::from(self.raw.get(15).copied().unwrap_or(0)).min(15)
    }

    /// The name's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.raw.get(..self.len()).unwrap_or(&[])
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl From<&str> for IfName {
    fn from(s: &str) -> IfName {
        IfName::new(s)
    }
}

impl std::fmt::Debug for IfName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Serialize for IfName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IfName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IfName, D::Error> {
        let s = String::deserialize(d)?;
        Ok(IfName::new(&s))
    }
}

/// The conntrack state of the packet's connection, as `--ctstate` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConnState {
    /// The first packet of a connection.
    New,
    /// A later packet of a connection seen both ways.
    Established,
    /// A connection related to another (an ICMP error, an FTP data connection).
    Related,
    /// A packet conntrack could not classify.
    Invalid,
    /// A packet exempted from tracking (CT --notrack, NOTRACK).
    Untracked,
}

/// One packet as netfilter sees it at a hook, with the socket and connection it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Packet {
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    /// Source address; its family selects the iptables or ip6tables tables.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (0 for protocols without ports).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Interface the packet came in on (`-i`), none for locally generated packets.
    pub in_iface: Option<IfName>,
    /// Interface the packet leaves by (`-o`), none before routing to the local host.
    pub out_iface: Option<IfName>,
    /// Whether the packet has a local socket (locally generated): `-m owner` needs one.
    pub has_socket: bool,
    /// The socket owner's file-system uid, as `-m owner --uid-owner` compares it.
    pub uid: u32,
    /// The socket owner's file-system gid.
    pub gid: u32,
    /// Supplementary groups (`--suppl-groups`), the first `suppl_len` entries.
    pub suppl: [u32; 4],
    /// How many supplementary groups are in `suppl`.
    pub suppl_len: u8,
    /// The packet mark (`-m mark`, MARK).
    pub mark: u32,
    /// The connection mark (`-m connmark`, CONNMARK).
    pub ctmark: u32,
    /// The connection's state.
    pub ctstate: ConnState,
    /// The connection's destination was translated (`--ctstate DNAT`).
    pub dnat_done: bool,
    /// The connection's source was translated (`--ctstate SNAT`).
    pub snat_done: bool,
    /// TCP flags (FIN 1, SYN 2, RST 4, PSH 8, ACK 16, URG 32); a connection's first packet is SYN.
    pub tcp_flags: u8,
}

impl Packet {
    /// The first packet (SYN) of a TCP connection opened locally by `uid`/`gid`.
    pub fn tcp_out(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, uid: u32, gid: u32) -> Packet {
        Packet {
            proto: 6,
            src,
            dst,
            sport,
            dport,
            in_iface: None,
            out_iface: None,
            has_socket: true,
            uid,
            gid,
            suppl: [0; 4],
            suppl_len: 0,
            mark: 0,
            ctmark: 0,
            ctstate: ConnState::New,
            dnat_done: false,
            snat_done: false,
            tcp_flags: 0x02,
        }
    }

    /// The family of the packet's addresses.
    pub fn family(&self) -> Family {
        if self.dst.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }

    /// The supplementary groups of the socket's owner.
    pub(crate) fn suppl_groups(&self) -> &[u32] {
        self.suppl.get(..usize::from(self.suppl_len)).unwrap_or(&[])
    }
}

/// A rule hit: the rule's matches all held (so the kernel's counter for it moves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Hit {
    /// The table.
    pub table: TableKind,
    /// Which of the tables playing `table`'s part ([`Ruleset::table_at`]): 0 but for
    /// nftables rulesets with several tables at one place.
    pub part: u8,
    /// Index of the chain in the table's [`Table::chains`].
    pub chain: u32,
    /// 0-based index of the rule in the chain (`iptables -L --line-numbers` counts from 1).
    pub rule: u32,
}

/// Receives the hits of an evaluation.
pub trait Observer {
    /// A rule's matches all held for `pkt` (the packet as it was when the rule was tried).
    fn hit(&mut self, hit: Hit);
    /// Whether [`Observer::tried`] must see every rule in the order a scan of each chain tries
    /// it (the default). An observer that says `false` lets the engine pass over the rules a
    /// chain's index shows cannot match the packet without trying them; the hits, the undecided
    /// rules, the verdict and the packet are the same either way (a rule passed over is one
    /// whose result is "no match", never an undecided one, so [`Observer::decide`] is asked
    /// about the same rules).
    const EVERY_TRIED: bool = true;
    /// A rule was tried, with its result (for checkers; the default does nothing).
    #[inline]
    fn tried(&mut self, _hit: Hit, _pkt: &Packet, _matched: Option<bool>) {}
    /// A rule's match could not be decided (an extension the model does not interpret); it is
    /// taken as [`Observer::decide`] says.
    fn undecided(&mut self, hit: Hit);
    /// How an undecided rule is taken: not matching (the default, as the evaluator takes it
    /// everywhere) or matching (reachability's concrete seeds follow one choice of the
    /// solver's free booleans, which may take either).
    #[inline]
    fn decide(&mut self, _hit: Hit) -> bool {
        false
    }
}

/// The fast path: records nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTrace;

impl Observer for NoTrace {
    const EVERY_TRIED: bool = false;
    #[inline]
    fn hit(&mut self, _: Hit) {}
    #[inline]
    fn undecided(&mut self, _: Hit) {}
}

/// Records every hit in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The hits, in evaluation order.
    pub hits: Vec<Hit>,
    /// Rules with a match the model could not decide (taken as not matching).
    pub undecided: Vec<Hit>,
}

impl Observer for Trace {
    const EVERY_TRIED: bool = false;
    fn hit(&mut self, hit: Hit) {
        self.hits.push(hit);
    }
    fn undecided(&mut self, hit: Hit) {
        self.undecided.push(hit);
    }
}

/// How a hook ended for the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookVerdict {
    /// The packet goes on.
    Accept,
    /// Dropped (DROP, a DROP policy).
    Drop,
    /// Dropped with an error reply (REJECT).
    Reject,
}

/// What one hook did to the packet besides the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HookEffects {
    /// A nat rule rewrote the destination (REDIRECT, DNAT).
    pub dnat: bool,
    /// TPROXY assigned the packet to a local socket on this port (and address, if given).
    pub tproxy: Option<(u16, Option<IpAddr>)>,
}

/// Per-evaluation scratch space (the traversal stack), reused across evaluations.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    stack: Vec<(u32, u32)>,
}

/// A ruleset prepared for evaluation: jump targets resolved to chain indices, long chains
/// indexed by destination address and port (see [`Engine::with_index_min`]).
#[derive(Debug, Clone)]
pub struct Engine {
    rs: Ruleset,
    /// Per family, per table (same order as the ruleset), per chain: its rules compiled, and
    /// its index.
    targets: [Vec<Vec<CChain>>; 2],
    /// Chains with at least this many keyed rules are indexed.
    index_min: usize,
    /// Per family, per hook: the base chains to run, in order ([`hook_plan`]).
    plan: [[Vec<PlanEntry>; 5]; 2],
    /// Local addresses, for `-m addrtype`.
    local: Vec<IpAddr>,
    /// Per family, where REDIRECT sends a packet that did not come from this host or lo: the
    /// first local address of the family that is no loopback one, else loopback's.
    redirect: [IpAddr; 2],
    /// Per family: whether some rule turns connection tracking on (see [`conntrack_active`]).
    ct_active: [bool; 2],
}

/// One base chain a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanEntry {
    /// The iptables table whose part its table plays ([`Table::kind`]; with hits, it names the
    /// table with `part`).
    pub kind: TableKind,
    /// Which of the tables of that kind ([`Ruleset::table_at`]).
    pub part: u8,
    /// The table's index in [`Ruleset::tables`].
    pub table: usize,
    /// The base chain's index in the table.
    pub chain: usize,
    /// A `type nat` chain (iptables' nat table): run for a connection's first packet, and only
    /// until one nat chain of the hook binds it.
    pub nat: bool,
}

/// The priority the kernel's nat core runs every nat chain of `hook` at: -100 (`dstnat`) at
/// PREROUTING and OUTPUT, 100 (`srcnat`) at INPUT and POSTROUTING.
fn nat_core_priority(hook: Hook) -> i32 {
    match hook {
        Hook::Prerouting | Hook::Output => -100,
        _ => 100,
    }
}

/// The base chains `hook` runs for `family`, in the kernel's order (docs/model-and-parser.md,
/// "Several tables at one hook", each point measured in the kernel):
/// - by priority, iptables' tables at the priorities iptables-nft registers them at
///   ([`crate::nft::standard_base`]), nft base chains at their own;
/// - every `type nat` chain runs inside the nat core, at its priority (-100 or 100), the nat
///   chains ordered among themselves by their own priority; they are tried one after the other
///   until one binds the connection ([`nat_bound`]);
/// - at equal priority the newest registration first: tables in the order they were created
///   ([`Ruleset::tables`]), chains in a table in theirs, the nat core as old as the family's
///   oldest nat chain.
pub fn hook_plan(rs: &Ruleset, family: Family, hook: Hook) -> Vec<PlanEntry> {
    let tables = rs.tables(family);
    // (priority, creation order, entry) of every base chain at `hook`.
    let mut chains: Vec<(i32, (usize, usize), PlanEntry)> = Vec::new();
    // The creation order of the family's oldest nat chain (any hook).
    let mut oldest_nat: Option<(usize, usize)> = None;
    for (ti, t) in tables.iter().enumerate() {
        let part = rs.part_of(family, ti);
        for (ci, c) in t.chains.iter().enumerate() {
            let Some(h) = c.hook() else { continue };
            let base = c
                .base
                .unwrap_or_else(|| crate::nft::standard_base(t.kind, h));
            let nat = base.ty == ChainType::Nat;
            // Tables and chains are met in creation order: the first nat chain is the oldest.
            if nat && oldest_nat.is_none() {
                oldest_nat = Some((ti, ci));
            }
            if h == hook {
                let entry = PlanEntry {
                    kind: t.kind,
                    part,
                    table: ti,
                    chain: ci,
                    nat,
                };
                chains.push((base.priority, (ti, ci), entry));
            }
        }
    }
    // Units the hook runs: each non-nat chain, and the nat core holding every nat chain.
    let mut nat: Vec<(i32, (usize, usize), PlanEntry)> = Vec::new();
    let mut units: Vec<(i32, (usize, usize), Vec<PlanEntry>)> = Vec::new();
    for (prio, seq, e) in chains {
        if e.nat {
            nat.push((prio, seq, e));
        } else {
            units.push((prio, seq, vec![e]));
        }
    }
    if !nat.is_empty() {
        nat.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let seq = oldest_nat.unwrap_or_default();
        units.push((
            nat_core_priority(hook),
            seq,
            nat.into_iter().map(|(_, _, e)| e).collect(),
        ));
    }
    units.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    units.into_iter().flat_map(|(_, _, e)| e).collect()
}

/// Whether the connection already has the address translation `hook`'s nat chains make: the
/// destination's at PREROUTING and OUTPUT, the source's at INPUT and POSTROUTING.
pub fn nat_bound(hook: Hook, pkt: &Packet) -> bool {
    match hook {
        Hook::Prerouting | Hook::Output => pkt.dnat_done,
        _ => pkt.snat_done,
    }
}

/// Whether connection tracking runs for `family` in a namespace holding `rs`. The kernel
/// registers conntrack for a family only while some rule needs it: a NAT target (REDIRECT, DNAT,
/// SNAT, MASQUERADE, NETMAP), `-m conntrack`, `-m state`, `-m connmark`, CONNMARK, CT without
/// `--notrack`, or an extension that counts connections. Without it packets carry no connection
/// and the nat table's chains never see them (the kernel oracle found this).
pub fn conntrack_active(rs: &Ruleset, family: Family) -> bool {
    rs.tables(family)
        .iter()
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
        .any(|r| {
            r.matches.iter().any(Match::turns_conntrack_on)
                || r.target.as_ref().is_some_and(Target::turns_conntrack_on)
        })
}

/// Every table of `rs` prepared for evaluation, per family.
fn compile(rs: &Ruleset, index_min: usize) -> [Vec<Vec<CChain>>; 2] {
    [Family::Ipv4, Family::Ipv6].map(|fam| {
        rs.tables(fam)
            .iter()
            .map(|t| compile_table(t, fam, index_min))
            .collect()
    })
}

fn fam_idx(f: Family) -> usize {
    match f {
        Family::Ipv4 => 0,
        Family::Ipv6 => 1,
    }
}

fn hook_idx(h: Hook) -> usize {
    match h {
        Hook::Prerouting => 0,
        Hook::Input => 1,
        Hook::Forward => 2,
        Hook::Output => 3,
        Hook::Postrouting => 4,
    }
}

/// The tables a hook runs, in kernel priority order as iptables-nft registers them (raw -300,
/// mangle -150, nat -100 on PREROUTING/OUTPUT and 100 on INPUT/POSTROUTING, filter 0, security
/// 150): on INPUT nat runs before security. (iptables-legacy puts security at 50, before nat;
/// the kernel oracle found the nft order on this machine, which is Debian's default.) The
/// evaluator and encoder order base chains by [`hook_plan`], from the priorities themselves; this
/// list is the independent statement of the same order that the evaluator's property tests'
/// reference runs by.
pub fn hook_tables(h: Hook) -> &'static [TableKind] {
    use TableKind::*;
    match h {
        Hook::Prerouting => &[Raw, Mangle, Nat],
        Hook::Input => &[Mangle, Filter, Nat, Security],
        Hook::Forward => &[Mangle, Filter, Security],
        Hook::Output => &[Raw, Mangle, Nat, Filter, Security],
        Hook::Postrouting => &[Mangle, Nat],
    }
}

impl Engine {
    /// Prepares `rs` for evaluation. Local addresses for `-m addrtype` default to the loopback
    /// ranges; see [`Engine::with_local_addrs`].
    pub fn new(rs: &Ruleset) -> Engine {
        let mut plan: [[Vec<PlanEntry>; 5]; 2] = Default::default();
        for fam in [Family::Ipv4, Family::Ipv6] {
            let fi = fam_idx(fam);
            for hook in Hook::ALL {
                if let Some(v) = plan.get_mut(fi).and_then(|p| p.get_mut(hook_idx(hook))) {
                    *v = hook_plan(rs, fam, hook);
                }
            }
        }
        Engine {
            rs: rs.clone(),
            targets: compile(rs, DEFAULT_INDEX_MIN),
            index_min: DEFAULT_INDEX_MIN,
            plan,
            ct_active: [
                conntrack_active(rs, Family::Ipv4),
                conntrack_active(rs, Family::Ipv6),
            ],
            local: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            redirect: [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
        }
    }

    /// Sets the addresses `-m addrtype` takes as LOCAL (besides the loopback ranges).
    pub fn with_local_addrs(mut self, addrs: &[IpAddr]) -> Engine {
        self.local.extend_from_slice(addrs);
        for (slot, v4) in self.redirect.iter_mut().zip([true, false]) {
            if let Some(a) = self
                .local
                .iter()
                .find(|a| a.is_ipv4() == v4 && !a.is_loopback())
            {
                *slot = *a;
            }
        }
        self
    }

    /// Indexes every chain with at least `min` keyed rules (a destination of one address or a
    /// `--dport` of one port; [`DEFAULT_INDEX_MIN`] unless set): evaluation then tries only the
    /// rules that can match the packet's destination and port, and every other rule, in the
    /// chain's order. `usize::MAX` indexes no chain (every rule is tried), 0 every chain with a
    /// keyed rule. What evaluation does is the same either way.
    pub fn with_index_min(mut self, min: usize) -> Engine {
        if min != self.index_min {
            self.index_min = min;
            self.targets = compile(&self.rs, min);
        }
        self
    }

    /// How big the engine's chain indexes are.
    pub fn index_stats(&self) -> IndexStats {
        let mut s = IndexStats::default();
        for ix in self.targets.iter().flatten().flatten() {
            if let Some(ix) = &ix.index {
                ix.add_stats(&mut s);
            }
        }
        s
    }

    /// The ruleset evaluated.
    pub fn ruleset(&self) -> &Ruleset {
        &self.rs
    }

    /// The table of `family`/`kind`, if present (the first of several: [`Engine::table_at`]).
    pub fn table(&self, family: Family, kind: TableKind) -> Option<&Table> {
        self.rs.table(family, kind)
    }

    /// The table a hit names ([`Ruleset::table_at`]).
    pub fn table_at(&self, family: Family, kind: TableKind, part: u8) -> Option<&Table> {
        self.rs.table_at(family, kind, part)
    }

    /// Runs every table of `hook` on the packet, in kernel order. The packet is updated in place
    /// (marks, translated addresses and ports); `nat` tables are consulted only when the
    /// connection is new and tracked, and when `skip_nat` is false.
    pub fn run_hook<O: Observer>(
        &self,
        hook: Hook,
        pkt: &mut Packet,
        scratch: &mut Scratch,
        obs: &mut O,
    ) -> (HookVerdict, HookEffects) {
        self.run_hook_opts(hook, pkt, scratch, obs, false)
    }

    /// [`Engine::run_hook`], with nat skipped when `skip_nat` (a looped-back packet whose
    /// connection already has its NAT bindings).
    pub fn run_hook_opts<O: Observer>(
        &self,
        hook: Hook,
        pkt: &mut Packet,
        scratch: &mut Scratch,
        obs: &mut O,
        skip_nat: bool,
    ) -> (HookVerdict, HookEffects) {
        let mut fx = HookEffects::default();
        let fam = pkt.family();
        let fi = fam_idx(fam);
        let Some(plan) = self.plan.get(fi).and_then(|p| p.get(hook_idx(hook))) else {
            return (HookVerdict::Accept, fx);
        };
        let tracked = self.ct_active.get(fi).copied().unwrap_or(false);
        let bound_at_entry = nat_bound(hook, pkt);
        for e in plan {
            if e.nat
                && (skip_nat
                    || !tracked
                    || pkt.ctstate != ConnState::New
                    || (nat_bound(hook, pkt) && !bound_at_entry))
            {
                continue;
            }
            let start = u32::try_from(e.chain).unwrap_or(u32::MAX);
            let at = (e.kind, e.part);
            match self.run_table(fam, e.table, at, start, hook, pkt, scratch, obs, &mut fx) {
                TableEnd::Continue => {}
                TableEnd::Drop => return (HookVerdict::Drop, fx),
                TableEnd::Reject => return (HookVerdict::Reject, fx),
            }
        }
        (HookVerdict::Accept, fx)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_table<O: Observer>(
        &self,
        fam: Family,
        ti: usize,
        (kind, part): (TableKind, u8),
        start: u32,
        hook: Hook,
        pkt: &mut Packet,
        scratch: &mut Scratch,
        obs: &mut O,
        fx: &mut HookEffects,
    ) -> TableEnd {
        let Some(table) = self.rs.tables(fam).get(ti) else {
            return TableEnd::Continue;
        };
        let Some(crules) = self.targets.get(fam_idx(fam)).and_then(|v| v.get(ti)) else {
            return TableEnd::Continue;
        };
        let policy = match table.chains.get(start as usize).and_then(|c| c.policy) {
            Some(Policy::Drop) => TableEnd::Drop,
            _ => TableEnd::Continue,
        };
        // As the kernel's jump stack: `cur` is where evaluation stands; a jump pushes the place
        // to come back to, a goto does not; RETURN, or the end of a chain, pops, and with
        // nothing to pop the built-in chain's policy applies.
        let stack = &mut scratch.stack;
        stack.clear();
        let mut cur: (u32, u32) = (start, 0);
        loop {
            let (ci, ri) = cur;
            let (Some(chain), Some(cchain)) =
                (table.chains.get(ci as usize), crules.get(ci as usize))
            else {
                return TableEnd::Continue;
            };
            // The next rule of this chain whose matches hold: with an index (and an observer
            // that need not see every rule tried), among the rules that can match only.
            let at = |rule: u32| Hit {
                table: kind,
                part,
                chain: ci,
                rule,
            };
            let found = match &cchain.index {
                Some(ix) if !O::EVERY_TRIED => {
                    let mut cands = ix.candidates(pkt);
                    let mut from = ri;
                    loop {
                        let Some(r) = cands.next(from) else {
                            break None;
                        };
                        from = r.saturating_add(1);
                        let Some(crule) = cchain.rules.get(r as usize) else {
                            break None;
                        };
                        if self.try_rule(chain, crule, at(r), pkt, hook, obs) {
                            break Some((crule, at(r)));
                        }
                    }
                }
                _ => {
                    let rest = cchain.rules.get(ri as usize..).unwrap_or(&[]);
                    rest.iter()
                        .zip(ri..)
                        .find(|&(crule, r)| self.try_rule(chain, crule, at(r), pkt, hook, obs))
                        .map(|(crule, r)| (crule, at(r)))
                }
            };
            let Some((crule, here)) = found else {
                match stack.pop() {
                    Some(back) => {
                        cur = back;
                        continue;
                    }
                    None => return policy,
                }
            };
            cur = (ci, here.rule.saturating_add(1));
            obs.hit(here);
            let Some(target) = chain
                .rules
                .get(here.rule as usize)
                .and_then(|r| r.target.as_ref())
            else {
                continue;
            };
            match target {
                Target::Accept => return TableEnd::Continue,
                Target::Drop => return TableEnd::Drop,
                Target::Reject { .. } => return TableEnd::Reject,
                Target::Return => match stack.pop() {
                    Some(back) => cur = back,
                    None => return policy,
                },
                Target::Jump { .. } | Target::Goto { .. } => {
                    let Some(to) = crule.jump else {
                        continue;
                    };
                    if matches!(target, Target::Jump { .. }) {
                        stack.push(cur);
                    }
                    cur = (to, 0);
                }
                Target::Redirect { ports, .. } => {
                    pkt.dst = self.redirect_addr(hook, pkt);
                    if let Some(p) = ports {
                        pkt.dport = p.lo;
                    }
                    pkt.dnat_done = true;
                    fx.dnat = true;
                    return TableEnd::Continue;
                }
                Target::Dnat { to, .. } => {
                    if let Some(a) = to.addr_lo {
                        pkt.dst = a;
                    }
                    if let Some(p) = to.ports {
                        pkt.dport = p.lo;
                    }
                    pkt.dnat_done = true;
                    fx.dnat = true;
                    return TableEnd::Continue;
                }
                Target::Snat { to, .. } => {
                    if let Some(a) = to.addr_lo {
                        pkt.src = a;
                    }
                    if let Some(p) = to.ports {
                        pkt.sport = p.lo;
                    }
                    pkt.snat_done = true;
                    return TableEnd::Continue;
                }
                Target::Masquerade { ports, .. } => {
                    if let Some(p) = ports {
                        pkt.sport = p.lo;
                    }
                    pkt.snat_done = true;
                    return TableEnd::Continue;
                }
                Target::Tproxy {
                    on_port,
                    on_ip,
                    mark,
                } => {
                    pkt.mark = (pkt.mark & !mark.mask) ^ mark.value;
                    let port = if *on_port == 0 { pkt.dport } else { *on_port };
                    fx.tproxy = Some((port, *on_ip));
                    return TableEnd::Continue;
                }
                Target::Mark(m) => pkt.mark = (pkt.mark & !m.mask) ^ m.value,
                Target::ConnmarkSet(m) => pkt.ctmark = (pkt.ctmark & !m.mask) ^ m.value,
                Target::ConnmarkSave { nfmask, ctmask } => {
                    pkt.ctmark = (pkt.ctmark & !ctmask) ^ (pkt.mark & nfmask);
                }
                Target::ConnmarkRestore { nfmask, ctmask } => {
                    pkt.mark = (pkt.mark & !nfmask) ^ (pkt.ctmark & ctmask);
                }
                Target::Ct { notrack, .. } => {
                    if *notrack {
                        pkt.ctstate = ConnState::Untracked;
                    }
                }
                Target::Notrack => pkt.ctstate = ConnState::Untracked,
                Target::Log { .. } | Target::Nflog { .. } => {}
                Target::Unknown { .. } => obs.undecided(here),
            }
        }
    }

    /// Tries rule `here.rule` of `chain` (compiled as `crule`) on `pkt`: whether it is a hit.
    /// Tells `obs` it was tried, and when it could not be decided (then `obs` decides).
    #[inline(always)]
    fn try_rule<O: Observer>(
        &self,
        chain: &Chain,
        crule: &CRule,
        here: Hit,
        pkt: &Packet,
        hook: Hook,
        obs: &mut O,
    ) -> bool {
        // The compact head first; the rule itself only when its `-m` matches matter.
        let m = if !crule.head.holds(pkt) {
            Some(false)
        } else if !crule.has_matches {
            Some(true)
        } else {
            match chain.rules.get(here.rule as usize) {
                Some(rule) => self.matches_hold(rule, pkt, hook),
                None => Some(false),
            }
        };
        obs.tried(here, pkt, m);
        match m {
            Some(true) => true,
            Some(false) => false,
            None => {
                obs.undecided(here);
                obs.decide(here)
            }
        }
    }

    /// Where REDIRECT sends a packet: the loopback address for locally generated packets (and
    /// packets that came in on lo), the first local address of the packet's family otherwise
    /// (the pod IP on eth0): [`Engine::redirect`], found once.
    #[inline(always)]
    fn redirect_addr(&self, hook: Hook, p: &Packet) -> IpAddr {
        // A constant in memory, not built on the stack: a packet's address is read whole right
        // after, and reading what was just written in parts stalls.
        static LOOPBACK: [IpAddr; 2] = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        let fi = fam_idx(p.family());
        if hook == Hook::Output || p.in_iface.is_some_and(|i| i.as_str() == "lo") {
            return LOOPBACK.get(fi).copied().unwrap_or(p.dst);
        }
        self.redirect.get(fi).copied().unwrap_or(p.dst)
    }

    /// Whether all the rule's matches hold; `None` when one cannot be decided.
    #[inline]
    pub fn rule_matches(&self, r: &Rule, p: &Packet, hook: Hook) -> Option<bool> {
        if let Some(n) = &r.src {
            if n.value.contains(p.src) == n.negated {
                return Some(false);
            }
        }
        if let Some(n) = &r.dst {
            if n.value.contains(p.dst) == n.negated {
                return Some(false);
            }
        }
        if let Some(n) = &r.in_iface {
            let m = p
                .in_iface
                .as_ref()
                .is_some_and(|i| n.value.matches_bytes(i.as_bytes()));
            if m == n.negated {
                return Some(false);
            }
        }
        if let Some(n) = &r.out_iface {
            let m = p
                .out_iface
                .as_ref()
                .is_some_and(|i| n.value.matches_bytes(i.as_bytes()));
            if m == n.negated {
                return Some(false);
            }
        }
        if let Some(n) = &r.proto {
            if (n.value.0 == p.proto) == n.negated {
                return Some(false);
            }
        }
        if let Some(f) = r.fragment {
            // Connections' packets here are never non-first fragments.
            if f {
                return Some(false);
            }
        }
        self.matches_hold(r, p, hook)
    }

    /// Whether all `-m` matches of the rule hold; `None` when one cannot be decided.
    #[inline(always)]
    fn matches_hold(&self, r: &Rule, p: &Packet, _hook: Hook) -> Option<bool> {
        let env = Env { local: &self.local };
        let mut undecided = false;
        for m in &r.matches {
            match m.eval(p, &env) {
                Some(true) => {}
                Some(false) => return Some(false),
                None => undecided = true,
            }
        }
        if undecided {
            None
        } else {
            Some(true)
        }
    }
}

enum TableEnd {
    Continue,
    Drop,
    Reject,
}
