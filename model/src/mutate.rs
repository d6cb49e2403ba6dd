//! Mutation operators: every single-rule edit of a ruleset, as pure functions on the model.
//!
//! [`mutants`] returns, for a ruleset, each mutant with a [`Mutation`] that says where it is
//! (family, table, chain, 1-based rule number), which [`Operator`] made it, the edit in words,
//! and the rule's text before and after ([`mutations`]: the edit that makes each instead, for a
//! ruleset whose mutants are too many to hold at once). `sidecar-verify mutate` proves each one: a mutant whose
//! behaviour changes but that every invariant accepts shows where the catalog is blind.
//!
//! The operators (one [`Operator`] each): delete a rule; swap it with the next rule of its
//! chain; drop one `!` (each negation of the rule separately); a port ±1 (each port or range end
//! of `--sport`/`--dport`/`--sports`/`--dports`/`--ports`, and of REDIRECT/MASQUERADE
//! `--to-ports`, DNAT/SNAT ports and TPROXY `--on-port`); an owner id ±1 (`--uid-owner`,
//! `--gid-owner`); RETURN↔ACCEPT; a CIDR's prefix length ±1; the last bit of an address's
//! network part flipped (`-s`, `-d`, DNAT's address); one match removed (`-s`, `-d`, `-i`,
//! `-o`, `-p`, each option of `-m tcp`/`-m udp`/`-m owner`, each other `-m` module but
//! `comment`); a jump or goto changed to RETURN.
//!
//! An edit may make a ruleset the kernel refuses (a port option without `-p`, a jump cycle):
//! the operators do not try to avoid that; the caller reloads each mutant's print (which runs
//! the parser's and [`crate::validate`]'s checks) and counts a refused one as invalid. Edits
//! that give back the same ruleset (swapping two equal rules) are left out.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ast::*;
use crate::matches::{Owner, Tcp, Udp};
use crate::print::print_rule;

/// What kind of edit a mutant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operator {
    /// The rule deleted.
    DeleteRule,
    /// The rule swapped with the next rule of its chain.
    SwapWithNext,
    /// One `!` dropped.
    DropNegation,
    /// A port (or a range's end) ±1.
    PortShift,
    /// An owner uid or gid (or a range's end) ±1.
    OwnerIdShift,
    /// RETURN made ACCEPT, or ACCEPT made RETURN.
    ReturnAccept,
    /// A CIDR's prefix length ±1.
    PrefixLength,
    /// The last bit of an address's network part flipped.
    AddressBit,
    /// One match removed.
    RemoveMatch,
    /// A jump or goto made RETURN.
    JumpToReturn,
}

impl Operator {
    /// Every operator, in the order [`mutants`] applies them to a rule.
    pub const ALL: [Operator; 10] = [
        Operator::DeleteRule,
        Operator::SwapWithNext,
        Operator::DropNegation,
        Operator::PortShift,
        Operator::OwnerIdShift,
        Operator::ReturnAccept,
        Operator::PrefixLength,
        Operator::AddressBit,
        Operator::RemoveMatch,
        Operator::JumpToReturn,
    ];

    /// The operator's name, as the JSON and the acceptance file spell it (`delete-rule`).
    pub fn name(self) -> &'static str {
        match self {
            Operator::DeleteRule => "delete-rule",
            Operator::SwapWithNext => "swap-with-next",
            Operator::DropNegation => "drop-negation",
            Operator::PortShift => "port-shift",
            Operator::OwnerIdShift => "owner-id-shift",
            Operator::ReturnAccept => "return-accept",
            Operator::PrefixLength => "prefix-length",
            Operator::AddressBit => "address-bit",
            Operator::RemoveMatch => "remove-match",
            Operator::JumpToReturn => "jump-to-return",
        }
    }

    /// The operator called `name`.
    pub fn from_name(name: &str) -> Option<Operator> {
        Operator::ALL.into_iter().find(|o| o.name() == name)
    }
}

/// Where a mutant differs from its ruleset, and how: enough for a person to find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutation {
    /// The family of the table edited.
    pub family: Family,
    /// The table.
    pub table: TableKind,
    /// The chain.
    pub chain: String,
    /// The 1-based number of the rule edited (for a swap, the first of the two).
    pub rule: u32,
    /// The kind of edit.
    pub operator: Operator,
    /// The edit in words: ``drop `!` of `-d` ``, `` `--dport` 15008 → 15009 ``, `delete`.
    pub edit: String,
    /// The rule as `iptables-save` prints it (without counters), before the edit.
    pub before: String,
    /// What stands at its place after the edit (for a swap, the next rule); none when deleted.
    pub after: Option<String>,
}

/// A rule's text as `iptables-save` prints it, without its counters (so that the text names the
/// rule whatever the counters were when it was saved).
pub fn rule_text(family: Family, chain: &str, r: &Rule) -> String {
    let mut r = r.clone();
    r.counters = Counters::default();
    print_rule(family, chain, &r)
}

/// Every single-rule mutant of `rs`, table by table, chain by chain, rule by rule, and per rule
/// in the order of [`Operator::ALL`]. Each is a whole ruleset: for a node's table, whose
/// mutants are too many to hold at once, [`mutations`] gives the edits to make one at a time.
pub fn mutants(rs: &Ruleset) -> Vec<(Mutation, Ruleset)> {
    mutations(rs)
        .into_iter()
        .map(|(m, e)| {
            let mutant = e.apply(rs);
            (m, mutant)
        })
        .collect()
}

/// A mutant as an edit of its ruleset, made when asked ([`Edit::apply`]).
#[derive(Debug, Clone)]
pub struct Edit {
    /// The family whose tables hold the chain.
    pass: Family,
    /// The table's index in that family.
    table: usize,
    /// An nft `inet` table's copy among the IPv6 tables, edited alike.
    twin: Option<usize>,
    /// The chain's index in the table.
    chain: usize,
    /// The 0-based rule.
    rule: usize,
    change: Change,
}

#[derive(Debug, Clone)]
enum Change {
    Delete,
    SwapWithNext,
    Replace(Box<Rule>),
}

impl Edit {
    /// The mutant: `rs` (the ruleset [`mutations`] was given) with the edit made.
    pub fn apply(&self, rs: &Ruleset) -> Ruleset {
        let mut m = rs.clone();
        let Some(c) = tables_mut(&mut m, self.pass)
            .get_mut(self.table)
            .and_then(|t| t.chains.get_mut(self.chain))
        else {
            return m;
        };
        let rules = &mut c.rules;
        match &self.change {
            Change::Delete => {
                if self.rule < rules.len() {
                    rules.remove(self.rule);
                }
            }
            Change::SwapWithNext => {
                if self.rule + 1 < rules.len() {
                    rules.swap(self.rule, self.rule + 1);
                }
            }
            Change::Replace(r) => {
                if let Some(slot) = rules.get_mut(self.rule) {
                    *slot = (**r).clone();
                }
            }
        }
        // The inet table's IPv6 copy gets the same rules.
        let edited = self.twin.map(|twin| (twin, rules.clone()));
        if let Some((twin, edited)) = edited {
            if let Some(c) = m
                .ipv6
                .get_mut(twin)
                .and_then(|t| t.chains.get_mut(self.chain))
            {
                c.rules = edited;
            }
        }
        m
    }
}

/// Every single-rule mutant of `rs` as [`mutants`] lists them, each as the edit that makes it.
pub fn mutations(rs: &Ruleset) -> Vec<(Mutation, Edit)> {
    let mut out = Vec::new();
    for pass in [Family::Ipv4, Family::Ipv6] {
        for (ti, t) in rs.tables(pass).iter().enumerate() {
            // An nft `inet` table is held by both families (`Table::nft`): it is mutated once,
            // from the IPv4 side, and each mutant edits both copies.
            let inet = t
                .nft
                .as_ref()
                .is_some_and(|n| n.family == crate::ast::NftFamily::Inet);
            if inet && pass == Family::Ipv6 {
                continue;
            }
            let twin = inet
                .then(|| rs.ipv6.iter().position(|u| u.nft == t.nft))
                .flatten();
            for (ci, c) in t.chains.iter().enumerate() {
                for (ri, r) in c.rules.iter().enumerate() {
                    // The family whose packets the rule reads (an inet rule's own, if it has one).
                    let family = r.family.unwrap_or(pass);
                    let before = rule_text(family, &c.name, r);
                    let mutation =
                        |operator: Operator, change: String, after: Option<String>| Mutation {
                            family,
                            table: t.kind,
                            chain: c.name.clone(),
                            rule: u32::try_from(ri + 1).unwrap_or(u32::MAX),
                            operator,
                            edit: change,
                            before: before.clone(),
                            after,
                        };
                    let edit = |change: Change| Edit {
                        pass,
                        table: ti,
                        twin,
                        chain: ci,
                        rule: ri,
                        change,
                    };
                    out.push((
                        mutation(Operator::DeleteRule, "delete".into(), None),
                        edit(Change::Delete),
                    ));
                    if let Some(next) = c.rules.get(ri + 1) {
                        if next != r {
                            out.push((
                                mutation(
                                    Operator::SwapWithNext,
                                    format!("swap with rule {}", ri + 2),
                                    Some(rule_text(family, &c.name, next)),
                                ),
                                edit(Change::SwapWithNext),
                            ));
                        }
                    }
                    // Edits of the rule itself.
                    for (op, change, edited) in rule_edits(family, r) {
                        if edited == *r {
                            continue;
                        }
                        let after = rule_text(family, &c.name, &edited);
                        out.push((
                            mutation(op, change, Some(after)),
                            edit(Change::Replace(Box::new(edited))),
                        ));
                    }
                }
            }
        }
    }
    out
}

fn tables_mut(rs: &mut Ruleset, family: Family) -> &mut Vec<Table> {
    match family {
        Family::Ipv4 => &mut rs.ipv4,
        Family::Ipv6 => &mut rs.ipv6,
    }
}

/// The edits of one rule, operator by operator ([`Operator::ALL`]'s order, the whole-chain ones
/// left out): each as (operator, the edit in words, the edited rule).
pub fn rule_edits(family: Family, r: &Rule) -> Vec<(Operator, String, Rule)> {
    let mut out = Vec::new();
    drop_negations(r, &mut out);
    port_shifts(r, &mut out);
    owner_shifts(r, &mut out);
    return_accept(r, &mut out);
    prefixes(family, r, &mut out);
    removals(r, &mut out);
    if let Some(t @ (Target::Jump { .. } | Target::Goto { .. })) = &r.target {
        let mut e = r.clone();
        e.target = Some(Target::Return);
        out.push((
            Operator::JumpToReturn,
            format!("`{}` → RETURN", t.name()),
            e,
        ));
    }
    out
}

type Edits = Vec<(Operator, String, Rule)>;

/// Each `!` of the rule dropped, one at a time.
fn drop_negations(r: &Rule, out: &mut Edits) {
    let op = Operator::DropNegation;
    let say = |what: &str| format!("drop `!` of `{what}`");
    // The rule's own parts.
    type Part = fn(&mut Rule) -> Option<&mut bool>;
    let parts: [(&str, Part); 5] = [
        ("-s", |r| r.src.as_mut().map(|n| &mut n.negated)),
        ("-d", |r| r.dst.as_mut().map(|n| &mut n.negated)),
        ("-i", |r| r.in_iface.as_mut().map(|n| &mut n.negated)),
        ("-o", |r| r.out_iface.as_mut().map(|n| &mut n.negated)),
        ("-p", |r| r.proto.as_mut().map(|n| &mut n.negated)),
    ];
    for (name, get) in parts {
        let mut e = r.clone();
        if let Some(n) = get(&mut e).filter(|n| **n) {
            *n = false;
            out.push((op, say(name), e));
        }
    }
    // Each negated option of each match.
    for (mi, m) in r.matches.iter().enumerate() {
        for (name, k) in negations(m) {
            let mut e = r.clone();
            if let Some(m) = e.matches.get_mut(mi) {
                set_negation(m, k, false);
            }
            out.push((op, say(name), e));
        }
    }
}

/// The negated options of a match, by name and by their index for [`set_negation`].
fn negations(m: &Match) -> Vec<(&'static str, usize)> {
    let on = |n: Option<bool>, name: &'static str, k: usize| (n == Some(true)).then_some((name, k));
    let v = match m {
        Match::Tcp(t) => vec![
            on(t.sport.as_ref().map(|n| n.negated), "--sport", 0),
            on(t.dport.as_ref().map(|n| n.negated), "--dport", 1),
            on(t.flags.as_ref().map(|n| n.negated), "--tcp-flags", 2),
        ],
        Match::Udp(u) => vec![
            on(u.sport.as_ref().map(|n| n.negated), "--sport", 0),
            on(u.dport.as_ref().map(|n| n.negated), "--dport", 1),
        ],
        Match::Multiport(p) => vec![on(Some(p.negated), "-m multiport", 0)],
        Match::Owner(o) => vec![
            on(o.uid.as_ref().map(|n| n.negated), "--uid-owner", 0),
            on(o.gid.as_ref().map(|n| n.negated), "--gid-owner", 1),
            on(
                o.socket_exists.as_ref().map(|n| n.negated),
                "--socket-exists",
                2,
            ),
        ],
        Match::Mark(x) => vec![on(Some(x.0.negated), "--mark", 0)],
        Match::Connmark(x) => vec![on(Some(x.0.negated), "-m connmark --mark", 0)],
        Match::Conntrack(c) => vec![on(Some(c.ctstate.negated), "--ctstate", 0)],
        Match::State(s) => vec![on(Some(s.0.negated), "--state", 0)],
        Match::Addrtype(a) => vec![
            on(a.src.as_ref().map(|n| n.negated), "--src-type", 0),
            on(a.dst.as_ref().map(|n| n.negated), "--dst-type", 1),
        ],
        Match::Iprange(i) => vec![
            on(i.src.as_ref().map(|n| n.negated), "--src-range", 0),
            on(i.dst.as_ref().map(|n| n.negated), "--dst-range", 1),
        ],
        Match::Set(s) => vec![on(Some(s.negated), "--match-set", 0)],
        Match::Statistic(s) => vec![on(Some(s.negated), "-m statistic", 0)],
        Match::Comment(_) | Match::Socket(_) | Match::Unknown { .. } => Vec::new(),
    };
    v.into_iter().flatten().collect()
}

fn set_negation(m: &mut Match, k: usize, to: bool) {
    fn set<T>(n: Option<&mut Neg<T>>, to: bool) {
        if let Some(n) = n {
            n.negated = to;
        }
    }
    match (m, k) {
        (Match::Tcp(t), 0) => set(t.sport.as_mut(), to),
        (Match::Tcp(t), 1) => set(t.dport.as_mut(), to),
        (Match::Tcp(t), _) => set(t.flags.as_mut(), to),
        (Match::Udp(u), 0) => set(u.sport.as_mut(), to),
        (Match::Udp(u), _) => set(u.dport.as_mut(), to),
        (Match::Multiport(p), _) => p.negated = to,
        (Match::Owner(o), 0) => set(o.uid.as_mut(), to),
        (Match::Owner(o), 1) => set(o.gid.as_mut(), to),
        (Match::Owner(o), _) => set(o.socket_exists.as_mut(), to),
        (Match::Mark(x), _) => x.0.negated = to,
        (Match::Connmark(x), _) => x.0.negated = to,
        (Match::Conntrack(c), _) => c.ctstate.negated = to,
        (Match::State(s), _) => s.0.negated = to,
        (Match::Addrtype(a), 0) => set(a.src.as_mut(), to),
        (Match::Addrtype(a), _) => set(a.dst.as_mut(), to),
        (Match::Iprange(i), 0) => set(i.src.as_mut(), to),
        (Match::Iprange(i), _) => set(i.dst.as_mut(), to),
        (Match::Set(s), _) => s.negated = to,
        (Match::Statistic(s), _) => s.negated = to,
        (Match::Comment(_) | Match::Socket(_) | Match::Unknown { .. }, _) => {}
    }
}

/// A range's ends moved by one, each way, where the result is still a range of valid values:
/// (the edit in words, the new range).
fn shifted(lo: u32, hi: u32, max: u32) -> Vec<(String, u32, u32)> {
    let mut v = Vec::new();
    let mut add = |from: u32, to: u32, nlo: u32, nhi: u32| {
        if nlo <= nhi && nhi <= max {
            v.push((format!("{from} → {to}"), nlo, nhi));
        }
    };
    if lo == hi {
        if let Some(d) = lo.checked_sub(1) {
            add(lo, d, d, d);
        }
        add(lo, lo + 1, lo + 1, lo + 1);
    } else {
        if let Some(d) = lo.checked_sub(1) {
            add(lo, d, d, hi);
        }
        add(lo, lo + 1, lo + 1, hi);
        if let Some(d) = hi.checked_sub(1) {
            add(hi, d, lo, d);
        }
        add(hi, hi + 1, lo, hi + 1);
    }
    v
}

fn port_shifted(p: PortRange) -> Vec<(String, PortRange)> {
    shifted(u32::from(p.lo), u32::from(p.hi), u32::from(u16::MAX))
        .into_iter()
        .filter_map(|(w, lo, hi)| {
            Some((
                w,
                PortRange {
                    lo: u16::try_from(lo).ok()?,
                    hi: u16::try_from(hi).ok()?,
                },
            ))
        })
        .collect()
}

/// Puts a new port range back into a match.
type PutPort = Box<dyn Fn(&mut Match, PortRange)>;

/// Each port of a match or target ±1.
fn port_shifts(r: &Rule, out: &mut Edits) {
    let op = Operator::PortShift;
    for (mi, m) in r.matches.iter().enumerate() {
        // (option, the port range, how to put a new one back)
        let mut slots: Vec<(String, PortRange, PutPort)> = Vec::new();
        match m {
            Match::Tcp(Tcp { sport, dport, .. }) | Match::Udp(Udp { sport, dport }) => {
                if let Some(p) = sport {
                    slots.push((
                        "--sport".into(),
                        p.value,
                        Box::new(|m, v| match m {
                            Match::Tcp(t) => set_port(&mut t.sport, v),
                            Match::Udp(u) => set_port(&mut u.sport, v),
                            _ => {}
                        }),
                    ));
                }
                if let Some(p) = dport {
                    slots.push((
                        "--dport".into(),
                        p.value,
                        Box::new(|m, v| match m {
                            Match::Tcp(t) => set_port(&mut t.dport, v),
                            Match::Udp(u) => set_port(&mut u.dport, v),
                            _ => {}
                        }),
                    ));
                }
            }
            Match::Multiport(mp) => {
                let opt = match mp.dir {
                    PortDir::Source => "--sports",
                    PortDir::Destination => "--dports",
                    PortDir::Either => "--ports",
                };
                for (k, p) in mp.ports.iter().enumerate() {
                    slots.push((
                        opt.into(),
                        *p,
                        Box::new(move |m, v| {
                            if let Match::Multiport(mp) = m {
                                if let Some(slot) = mp.ports.get_mut(k) {
                                    *slot = v;
                                }
                            }
                        }),
                    ));
                }
            }
            _ => {}
        }
        for (opt, p, put) in slots {
            for (w, v) in port_shifted(p) {
                let mut e = r.clone();
                if let Some(m) = e.matches.get_mut(mi) {
                    put(m, v);
                }
                out.push((op, format!("`{opt}` {w}"), e));
            }
        }
    }
    // Targets.
    let Some(t) = &r.target else { return };
    let (opt, p): (&str, Option<PortRange>) = match t {
        Target::Redirect { ports, .. } | Target::Masquerade { ports, .. } => ("--to-ports", *ports),
        Target::Dnat { to, .. } => ("--to-destination", to.ports),
        Target::Snat { to, .. } => ("--to-source", to.ports),
        Target::Tproxy { on_port, .. } => (
            "--on-port",
            (*on_port != 0).then(|| PortRange::single(*on_port)),
        ),
        _ => ("", None),
    };
    let Some(p) = p else { return };
    for (w, v) in port_shifted(p) {
        let mut e = r.clone();
        if let Some(t) = e.target.as_mut() {
            match t {
                Target::Redirect { ports, .. } | Target::Masquerade { ports, .. } => {
                    *ports = Some(v);
                }
                Target::Dnat { to, .. } | Target::Snat { to, .. } => to.ports = Some(v),
                Target::Tproxy { on_port, .. } => *on_port = v.lo,
                _ => {}
            }
        }
        out.push((op, format!("`{opt}` port {w}"), e));
    }
}

fn set_port(slot: &mut Option<Neg<PortRange>>, v: PortRange) {
    if let Some(n) = slot {
        n.value = v;
    }
}

/// Each owner id ±1.
fn owner_shifts(r: &Rule, out: &mut Edits) {
    for (mi, m) in r.matches.iter().enumerate() {
        let Match::Owner(o) = m else { continue };
        type Slot = fn(&mut Owner) -> &mut Option<Neg<IdSpec>>;
        let slots: [(&str, Slot); 2] = [
            ("--uid-owner", |o| &mut o.uid),
            ("--gid-owner", |o| &mut o.gid),
        ];
        for (opt, get) in slots {
            let mut probe = o.clone();
            let Some(Neg {
                value: IdSpec::Range { lo, hi },
                ..
            }) = get(&mut probe).clone()
            else {
                continue;
            };
            // The kernel's ids stop below u32::MAX (the parser refuses it, as iptables does).
            for (w, nlo, nhi) in shifted(lo, hi, u32::MAX - 1) {
                let mut e = r.clone();
                if let Some(Match::Owner(eo)) = e.matches.get_mut(mi) {
                    if let Some(n) = get(eo) {
                        n.value = IdSpec::Range { lo: nlo, hi: nhi };
                    }
                }
                out.push((Operator::OwnerIdShift, format!("`{opt}` {w}"), e));
            }
        }
    }
}

fn return_accept(r: &Rule, out: &mut Edits) {
    let to = match r.target {
        Some(Target::Return) => Target::Accept,
        Some(Target::Accept) => Target::Return,
        _ => return,
    };
    let mut e = r.clone();
    let change = format!(
        "{} → {}",
        r.target.as_ref().map_or("", Target::name),
        to.name()
    );
    e.target = Some(to);
    out.push((Operator::ReturnAccept, change, e));
}

/// The address with bit `i` (0 the most significant) flipped.
fn flip_bit(a: IpAddr, i: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let bit = 1u32.checked_shl(31 - u32::from(i.min(31))).unwrap_or(0);
            IpAddr::V4((u32::from(v) ^ bit).into())
        }
        IpAddr::V6(v) => {
            let bit = 1u128.checked_shl(127 - u32::from(i.min(127))).unwrap_or(0);
            IpAddr::V6((u128::from(v) ^ bit).into())
        }
    }
}

fn cidr_words(c: &Cidr) -> String {
    format!("{}/{}", c.addr, c.prefix)
}

/// Each CIDR's prefix length ±1, and the last bit of its network part flipped; DNAT's address
/// with its last bit flipped.
fn prefixes(family: Family, r: &Rule, out: &mut Edits) {
    let width = match family {
        Family::Ipv4 => 32,
        Family::Ipv6 => 128,
    };
    type Slot = fn(&mut Rule) -> &mut Option<Neg<Cidr>>;
    let slots: [(&str, Slot); 2] = [("-s", |r| &mut r.src), ("-d", |r| &mut r.dst)];
    for (opt, get) in slots {
        let mut probe = r.clone();
        let Some(n) = *get(&mut probe) else { continue };
        let c = n.value;
        let mut lengths = Vec::new();
        if c.prefix > 0 {
            lengths.push(c.prefix - 1);
        }
        if c.prefix < width {
            lengths.push(c.prefix + 1);
        }
        for p in lengths {
            let nc = Cidr::new(c.addr, p);
            let mut e = r.clone();
            *get(&mut e) = Some(Neg::new(n.negated, nc));
            out.push((
                Operator::PrefixLength,
                format!("`{opt}` {} → {}", cidr_words(&c), cidr_words(&nc)),
                e,
            ));
        }
        if c.prefix > 0 {
            let nc = Cidr::new(flip_bit(c.addr, c.prefix - 1), c.prefix);
            let mut e = r.clone();
            *get(&mut e) = Some(Neg::new(n.negated, nc));
            out.push((
                Operator::AddressBit,
                format!("`{opt}` {} → {}", cidr_words(&c), cidr_words(&nc)),
                e,
            ));
        }
    }
    if let Some(Target::Dnat { to, .. }) = &r.target {
        if let (Some(a), None) = (to.addr_lo, to.addr_hi) {
            let na = flip_bit(a, width - 1);
            let mut e = r.clone();
            if let Some(Target::Dnat { to, .. }) = e.target.as_mut() {
                to.addr_lo = Some(na);
            }
            out.push((
                Operator::AddressBit,
                format!("`--to-destination` {a} → {na}"),
                e,
            ));
        }
    }
}

/// Takes one option out of a match.
type TakeOption = fn(&mut Match);

/// Each match removed, one at a time: `-s`, `-d`, `-i`, `-o`, `-p`, each option of `-m tcp`,
/// `-m udp` and `-m owner` (the module itself when it was its only one), each other module but
/// `comment`.
fn removals(r: &Rule, out: &mut Edits) {
    let op = Operator::RemoveMatch;
    let say = |what: &str| format!("remove `{what}`");
    type Part = fn(&mut Rule) -> bool;
    let parts: [(&str, Part); 5] = [
        ("-s", |r| r.src.take().is_some()),
        ("-d", |r| r.dst.take().is_some()),
        ("-i", |r| r.in_iface.take().is_some()),
        ("-o", |r| r.out_iface.take().is_some()),
        ("-p", |r| r.proto.take().is_some()),
    ];
    for (name, take) in parts {
        let mut e = r.clone();
        if take(&mut e) {
            out.push((op, say(name), e));
        }
    }
    for (mi, m) in r.matches.iter().enumerate() {
        // (option, how to take it out of a copy of the match)
        let options: Vec<(&str, TakeOption)> = match m {
            Match::Tcp(t) => [
                (
                    t.sport.is_some(),
                    "--sport",
                    (|m: &mut Match| {
                        if let Match::Tcp(t) = m {
                            t.sport = None;
                        }
                    }) as fn(&mut Match),
                ),
                (t.dport.is_some(), "--dport", |m: &mut Match| {
                    if let Match::Tcp(t) = m {
                        t.dport = None;
                    }
                }),
                (t.flags.is_some(), "--tcp-flags", |m: &mut Match| {
                    if let Match::Tcp(t) = m {
                        t.flags = None;
                    }
                }),
            ]
            .into_iter()
            .filter(|(on, _, _)| *on)
            .map(|(_, n, f)| (n, f))
            .collect(),
            Match::Udp(u) => [
                (
                    u.sport.is_some(),
                    "--sport",
                    (|m: &mut Match| {
                        if let Match::Udp(u) = m {
                            u.sport = None;
                        }
                    }) as fn(&mut Match),
                ),
                (u.dport.is_some(), "--dport", |m: &mut Match| {
                    if let Match::Udp(u) = m {
                        u.dport = None;
                    }
                }),
            ]
            .into_iter()
            .filter(|(on, _, _)| *on)
            .map(|(_, n, f)| (n, f))
            .collect(),
            Match::Owner(o) => [
                (
                    o.uid.is_some(),
                    "--uid-owner",
                    (|m: &mut Match| {
                        if let Match::Owner(o) = m {
                            o.uid = None;
                        }
                    }) as fn(&mut Match),
                ),
                (o.gid.is_some(), "--gid-owner", |m: &mut Match| {
                    if let Match::Owner(o) = m {
                        o.gid = None;
                    }
                }),
                (
                    o.socket_exists.is_some(),
                    "--socket-exists",
                    |m: &mut Match| {
                        if let Match::Owner(o) = m {
                            o.socket_exists = None;
                        }
                    },
                ),
            ]
            .into_iter()
            .filter(|(on, _, _)| *on)
            .map(|(_, n, f)| (n, f))
            .collect(),
            Match::Comment(_) => continue,
            other => {
                let mut e = r.clone();
                e.matches.remove(mi);
                out.push((op, say(&format!("-m {}", other.name())), e));
                continue;
            }
        };
        for (name, take) in options {
            let mut e = r.clone();
            let mut emptied = false;
            if let Some(em) = e.matches.get_mut(mi) {
                take(em);
                emptied = is_empty(em);
            }
            if emptied {
                e.matches.remove(mi);
            }
            out.push((op, say(name), e));
        }
    }
}

/// Whether a match of tcp, udp or owner has no option left.
fn is_empty(m: &Match) -> bool {
    match m {
        Match::Tcp(t) => *t == Tcp::default(),
        Match::Udp(u) => *u == Udp::default(),
        Match::Owner(o) => o.uid.is_none() && o.gid.is_none() && o.socket_exists.is_none(),
        _ => false,
    }
}
