//! Proofs sliced by destination (issue 16): a node's nat table holds a rule per service in
//! `KUBE-SERVICES` (and per node port in `KUBE-NODEPORTS`), each the door to that service's
//! chains. Every hop of a journey is a connection to the first packet's original destination,
//! protocol and port, so a journey passes through at most the doors whose key it has. A proof
//! over all first packets is split into regions ([`Region`]): one per key of the keyed chains'
//! rules ("the first packet has this key's fields") and the rest ("it has none of them"). Their
//! union is every packet; in each, the encoder leaves out the doors the region's packets cannot
//! have, and with them every chain behind them ([`crate::smt::encode::focus`]). An invariant is
//! violated when it is in some region, holds when it does in all.
//!
//! Most services are alike: the same chains and rules up to their addresses, ports and names.
//! Regions whose slices are alike in that sense are one *class*, and only one region of a class
//! (its representative) is proved. Why that is sound: let `k` and `j` be two keys of a class.
//! Their slices (the rules left after the doors excluded for the key, and the chains reachable)
//! are the common part, the same for every key (the rest region's slice), plus each key's own
//! part: its doors and the chains behind them. Every address and port the common part, the
//! pod, the profile or the journey's encoding mentions is *fixed*; an address or port of the
//! own part that is not fixed is *private*. The signature ([`Plan`]) is the own part's text with
//! chain names, private addresses and private ports replaced by placeholders numbered in order
//! of appearance, each placeholder carrying its *atom*: which fixed address ranges (or port
//! ranges) hold the value. Equal signatures give a bijection `π` from `k`'s private values to
//! `j`'s, value for value within an atom; when `π` is the identity on the values both have
//! (checked), the permutation `σ` that swaps each value with its image and fixes every other
//! value preserves every predicate the encoding and the invariants apply (membership of each
//! fixed range, equality with each fixed value), maps `k`'s slice onto `j`'s and `k`'s region
//! onto `j`'s. So a first packet violates an invariant in `j`'s region exactly when its image
//! does in `k`'s: one proof decides both. The encoder reports a *leak* when it had to encode a
//! door it should have left out (a hop's packet no longer carried the first packet's fields
//! there); the slice is then not the one analysed, and the caller proves without slicing.
//!
//! Only IPv4 is sliced (the addresses scanned below are IPv4); an IPv6 family is proved whole.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use sidecar_model::matches::Match;
use sidecar_model::pod::{Pod, Profile};
use sidecar_model::print::print_rule_spec;
use sidecar_model::{Family, Rule, Ruleset};

use sidecar_model::eval::Packet;

use crate::smt::encode::focus::{Region, SliceKey};
use crate::smt::RuleId;

/// A chain with at least this many rules with a key is a keyed chain.
pub const MIN_KEYED: usize = 32;

/// Slicing is used when the keyed chains hold at least this many keys (below it one proof of
/// the whole ruleset is cheaper than the regions).
pub const MIN_KEYS: usize = 64;

/// The regions of one family's proofs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The keyed chains, by table index and chain index.
    pub keyed: Arc<HashSet<(usize, usize)>>,
    /// Every key of the keyed chains' rules.
    pub keys: Arc<HashSet<SliceKey>>,
    /// The classes of alike keys.
    pub classes: Vec<Class>,
    /// The common part as text (its chains by name, their rules but the doors), for `diff`:
    /// two rulesets with the same common part, keys and keyed chains differ only in the
    /// regions of the keys whose own parts differ.
    pub common: String,
    /// Each key's own part as text (chain names as placeholders, every value as written).
    pub own: HashMap<SliceKey, String>,
    /// Whether some own part jumps back into a common chain that leads to a keyed chain (a
    /// door could then be tried where the packet is no longer the first one's: see `diff`).
    pub reenters: bool,
}

/// Keys whose regions are alike ([`plan`]): one proof, the first member's, decides them all.
#[derive(Debug, Clone)]
pub struct Class {
    /// The members, the representative first.
    pub members: Vec<Member>,
}

/// A key of a class with its own part.
#[derive(Debug, Clone)]
pub struct Member {
    /// The key.
    pub key: SliceKey,
    /// The rules of its own part (its doors in the common part, then its chains' rules), in
    /// the order of the signature: the i-th rule of every member of a class is the i-th of the
    /// representative under `σ`.
    pub rules: Vec<RuleId>,
    /// Its private addresses (IPv4, as numbers) and ports, in the order of the signature.
    pub addrs: Vec<u32>,
    /// See `addrs`.
    pub ports: Vec<u16>,
}

impl Plan {
    /// The regions to prove: the rest, then each class's representative, with its class.
    pub fn regions(&self) -> Vec<(Region, Option<&Class>)> {
        let mut v = vec![(Region::Rest(self.keys.clone()), None)];
        v.extend(
            self.classes
                .iter()
                .filter_map(|c| Some((Region::Key(c.members.first()?.key), Some(c)))),
        );
        v
    }
}

/// `σ` between two members of a class: the packet with each private address and port of
/// `from` replaced by the same one of `to`, and the other way round.
pub fn map_packet(p: &Packet, from: &Member, to: &Member) -> Packet {
    let addr = |a: IpAddr| -> IpAddr {
        let IpAddr::V4(v) = a else { return a };
        let n = u32::from(v);
        let swap = |x: &[u32], y: &[u32]| {
            x.iter()
                .position(|z| *z == n)
                .and_then(|i| y.get(i).copied())
        };
        match swap(&from.addrs, &to.addrs).or_else(|| swap(&to.addrs, &from.addrs)) {
            Some(m) => IpAddr::V4(Ipv4Addr::from(m)),
            None => a,
        }
    };
    let port = |n: u16| -> u16 {
        let swap = |x: &[u16], y: &[u16]| {
            x.iter()
                .position(|z| *z == n)
                .and_then(|i| y.get(i).copied())
        };
        swap(&from.ports, &to.ports)
            .or_else(|| swap(&to.ports, &from.ports))
            .unwrap_or(n)
    };
    let mut q = *p;
    q.src = addr(p.src);
    q.dst = addr(p.dst);
    q.sport = port(p.sport);
    q.dport = port(p.dport);
    q
}

/// How many distinct keys the keyed chains of `fam` of `rs` hold (0 for an IPv6 family):
/// [`plan`] slices when that is at least `min_keys`.
pub fn keys(rs: &Ruleset, fam: Family, min_keys: usize) -> usize {
    if fam != Family::Ipv4 {
        return 0;
    }
    let mut keys = HashSet::new();
    for t in rs.tables(fam) {
        for c in &t.chains {
            let ks: Vec<SliceKey> = c.rules.iter().filter_map(SliceKey::of).collect();
            if ks.len() >= MIN_KEYED.min(min_keys) {
                keys.extend(ks);
            }
        }
    }
    keys.len()
}

/// A rule of a keyed chain with a key.
#[derive(Debug, Clone, Copy)]
struct Door {
    table: usize,
    chain: usize,
    rule: usize,
    key: SliceKey,
}

/// The plan for `fam` of `rs`, or `None` when it is not worth slicing (fewer than `min_keys`
/// keys, or an IPv6 family). A chain is keyed with [`MIN_KEYED`] rules with a key, or
/// `min_keys` when that is fewer (the tests slice small rulesets so).
pub fn plan(
    rs: &Ruleset,
    fam: Family,
    pod: &Pod,
    profile: &Profile,
    min_keys: usize,
) -> Option<Plan> {
    if fam != Family::Ipv4 {
        return None;
    }
    let tables = rs.tables(fam);
    let mut keyed = HashSet::new();
    let mut doors: Vec<Door> = Vec::new();
    for (ti, t) in tables.iter().enumerate() {
        for (ci, c) in t.chains.iter().enumerate() {
            let n = c.rules.iter().filter(|r| SliceKey::of(r).is_some()).count();
            if n < MIN_KEYED.min(min_keys) {
                continue;
            }
            keyed.insert((ti, ci));
            for (ri, r) in c.rules.iter().enumerate() {
                if let Some(key) = SliceKey::of(r) {
                    doors.push(Door {
                        table: ti,
                        chain: ci,
                        rule: ri,
                        key,
                    });
                }
            }
        }
    }
    let keys: HashSet<SliceKey> = doors.iter().map(|d| d.key).collect();
    if keys.len() < min_keys {
        return None;
    }
    let door_at: HashMap<(usize, usize, usize), SliceKey> = doors
        .iter()
        .map(|d| ((d.table, d.chain, d.rule), d.key))
        .collect();
    // Per door: how many rules of its chain before it are not doors.
    let mut plain_before: HashMap<(usize, usize, usize), usize> = HashMap::new();
    for &(ti, ci) in &keyed {
        let Some(c) = tables.get(ti).and_then(|t| t.chains.get(ci)) else {
            continue;
        };
        let mut plain = 0;
        for ri in 0..c.rules.len() {
            if door_at.contains_key(&(ti, ci, ri)) {
                plain_before.insert((ti, ci, ri), plain);
            } else {
                plain += 1;
            }
        }
    }
    let rule = |ti: usize, ci: usize, ri: usize| -> Option<&Rule> {
        tables.get(ti)?.chains.get(ci)?.rules.get(ri)
    };

    // The common part: the chains reachable from the built-in chains without a door.
    let mut common: HashSet<(usize, usize)> = HashSet::new();
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for (ti, t) in tables.iter().enumerate() {
        for (ci, c) in t.chains.iter().enumerate() {
            if c.hook().is_some() && common.insert((ti, ci)) {
                stack.push((ti, ci));
            }
        }
    }
    while let Some((ti, ci)) = stack.pop() {
        let Some(c) = tables.get(ti).and_then(|t| t.chains.get(ci)) else {
            continue;
        };
        for (ri, r) in c.rules.iter().enumerate() {
            if door_at.contains_key(&(ti, ci, ri)) {
                continue;
            }
            if let Some(to) = jump_target(rs, fam, ti, r) {
                if common.insert((ti, to)) {
                    stack.push((ti, to));
                }
            }
        }
    }

    // The common part as text, and the common chains that lead to a keyed chain.
    let mut common_sorted: Vec<(usize, usize)> = common.iter().copied().collect();
    common_sorted.sort_unstable();
    let mut common_text = String::new();
    let mut to_keyed: HashSet<(usize, usize)> = keyed.clone();
    loop {
        let before = to_keyed.len();
        for &(ti, ci) in &common_sorted {
            let Some(c) = tables.get(ti).and_then(|t| t.chains.get(ci)) else {
                continue;
            };
            let leads = c.rules.iter().enumerate().any(|(ri, r)| {
                !door_at.contains_key(&(ti, ci, ri))
                    && jump_target(rs, fam, ti, r).is_some_and(|to| to_keyed.contains(&(ti, to)))
            });
            if leads {
                to_keyed.insert((ti, ci));
            }
        }
        if to_keyed.len() == before {
            break;
        }
    }
    for &(ti, ci) in &common_sorted {
        let Some(t) = tables.get(ti) else { continue };
        let Some(c) = t.chains.get(ci) else { continue };
        common_text.push_str(&format!(
            "chain {} {} {}\n",
            t.kind.name(),
            rs.part_of(fam, ti),
            c.name
        ));
        for (ri, r) in c.rules.iter().enumerate() {
            if !door_at.contains_key(&(ti, ci, ri)) {
                common_text.push_str(&print_rule_spec(fam, r));
                common_text.push('\n');
            }
        }
    }
    let mut reenters = false;

    // The fixed values: the common part's, the pod's, the profile's, the encoding's own.
    let mut fixed = Fixed::default();
    for &(ti, ci) in &common {
        if let Some(c) = tables.get(ti).and_then(|t| t.chains.get(ci)) {
            for (ri, r) in c.rules.iter().enumerate() {
                if !door_at.contains_key(&(ti, ci, ri)) {
                    fixed.scan(&spec(fam, r), true);
                }
            }
        }
    }
    for ip in &pod.ips {
        fixed.scan(&ip.to_string(), true);
    }
    fixed.scan("127.0.0.0/8 0.0.0.0/0 255.255.255.255 53 80 443", true);
    for n in 40_000u32..=40_016 {
        fixed.ports.insert(n);
    }
    fixed.scan(&serde_json::to_string(profile).unwrap_or_default(), true);

    // Each key's own part: the doors a packet with it passes, and the chains behind them.
    let by_dst: HashMap<IpAddr, Vec<usize>> = group(&doors, |d| d.key.dst);
    let by_port: HashMap<(u8, u16), Vec<usize>> =
        group(&doors, |d| Some((d.key.proto?, d.key.dport?)));
    let loose: Vec<usize> = (0..doors.len())
        .filter(|&i| {
            doors
                .get(i)
                .is_some_and(|d| d.key.dst.is_none() || d.key.dport.is_none())
        })
        .collect();
    let mut sorted: Vec<SliceKey> = keys.iter().copied().collect();
    sorted.sort();
    let mut own: Vec<(SliceKey, Vec<String>, Vec<RuleId>)> = Vec::with_capacity(sorted.len());
    for k in &sorted {
        let mut cand: Vec<usize> = loose.clone();
        if let Some(a) = k.dst {
            cand.extend(by_dst.get(&a).into_iter().flatten());
        }
        if let (Some(p), Some(d)) = (k.proto, k.dport) {
            cand.extend(by_port.get(&(p, d)).into_iter().flatten());
        }
        cand.sort_unstable();
        cand.dedup();
        let passed: Vec<Door> = cand
            .iter()
            .filter_map(|&i| doors.get(i).copied())
            .filter(|d| !d.key.disjoint(*k))
            .collect();
        // The doors of the common part are the own part's entries; a door in a chain of the
        // own part is listed with that chain.
        let entries: Vec<&Door> = passed
            .iter()
            .filter(|d| common.contains(&(d.table, d.chain)))
            .collect();
        let mut lines = Vec::new();
        let mut ids: Vec<RuleId> = Vec::new();
        let id = |ti: usize, ci: usize, ri: usize| RuleId {
            table: tables
                .get(ti)
                .map_or(sidecar_model::TableKind::Nat, |t| t.kind),
            part: rs.part_of(fam, ti),
            chain: ci,
            rule: ri,
        };
        let mut names: HashMap<(usize, usize), usize> = HashMap::new();
        let mut queue: Vec<(usize, usize)> = Vec::new();
        for d in &entries {
            let Some(r) = rule(d.table, d.chain, d.rule) else {
                continue;
            };
            // Where the door stands among the rules left in its chain: after the chain's other
            // rules before it, and the doors before it that a packet with the key passes.
            let before = plain_before
                .get(&(d.table, d.chain, d.rule))
                .copied()
                .unwrap_or(0)
                + passed
                    .iter()
                    .filter(|o| (o.table, o.chain) == (d.table, d.chain) && o.rule < d.rule)
                    .count();
            let name = chain_name(rs, fam, d.table, d.chain);
            let text = own_text(rs, fam, d.table, r, &common, &mut names, &mut queue);
            lines.push(format!("door {} {name} {before}:{text}", d.table));
            ids.push(id(d.table, d.chain, d.rule));
        }
        let mut at = 0;
        while let Some(&(ti, ci)) = queue.get(at) {
            at += 1;
            let Some(c) = tables.get(ti).and_then(|t| t.chains.get(ci)) else {
                continue;
            };
            lines.push(format!(
                "chain {ti} @{}",
                names.get(&(ti, ci)).unwrap_or(&0)
            ));
            for (ri, r) in c.rules.iter().enumerate() {
                if door_at.get(&(ti, ci, ri)).is_some_and(|o| o.disjoint(*k)) {
                    continue;
                }
                if jump_target(rs, fam, ti, r).is_some_and(|to| to_keyed.contains(&(ti, to))) {
                    reenters = true;
                }
                let text = own_text(rs, fam, ti, r, &common, &mut names, &mut queue);
                lines.push(format!("rule {text}"));
                ids.push(id(ti, ci, ri));
            }
        }
        // The own part's ranges are fixed too: a value compared against them keeps its side.
        for l in &lines {
            fixed.scan(l, false);
        }
        own.push((*k, lines, ids));
    }

    // Signatures, and classes of keys whose private values map onto each other.
    let mut classes: Vec<Class> = Vec::new();
    // Per signature: the indices of the classes with it.
    let mut reps: HashMap<String, Vec<usize>> = HashMap::new();
    let mut own_texts: HashMap<SliceKey, String> = HashMap::with_capacity(own.len());
    for (k, lines, ids) in own {
        let (sig, addrs, ports) = fixed.abstracted(&lines);
        own_texts.insert(k, lines.join("\n"));
        let member = Member {
            key: k,
            rules: ids,
            addrs,
            ports: ports
                .iter()
                .map(|p| u16::try_from(*p).unwrap_or(u16::MAX))
                .collect(),
        };
        let slot = reps.entry(sig).or_default();
        let fits = slot.iter().copied().find(|&ci| {
            classes
                .get(ci)
                .and_then(|c| c.members.first())
                .is_some_and(|r| {
                    compatible(&r.addrs, &member.addrs) && compatible(&r.ports, &member.ports)
                })
        });
        match fits.and_then(|ci| classes.get_mut(ci)) {
            Some(c) => c.members.push(member),
            None => {
                slot.push(classes.len());
                classes.push(Class {
                    members: vec![member],
                });
            }
        }
    }
    Some(Plan {
        keyed: Arc::new(keyed),
        keys: Arc::new(keys),
        classes,
        common: common_text,
        own: own_texts,
        reenters,
    })
}

/// `π` (the i-th value of `a` to the i-th of `b`) is the identity on the values both hold.
fn compatible<T: Copy + Eq + std::hash::Hash>(a: &[T], b: &[T]) -> bool {
    let ia: HashMap<T, usize> = a.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    b.iter()
        .enumerate()
        .all(|(i, v)| ia.get(v).is_none_or(|j| *j == i))
        && a.iter()
            .enumerate()
            .all(|(i, v)| b.iter().position(|w| w == v).is_none_or(|j| j == i))
}

fn group<K: std::hash::Hash + Eq>(
    doors: &[Door],
    key: impl Fn(&Door) -> Option<K>,
) -> HashMap<K, Vec<usize>> {
    let mut m: HashMap<K, Vec<usize>> = HashMap::new();
    for (i, d) in doors.iter().enumerate() {
        if let Some(k) = key(d) {
            m.entry(k).or_default().push(i);
        }
    }
    m
}

fn chain_name(rs: &Ruleset, fam: Family, ti: usize, ci: usize) -> String {
    rs.tables(fam)
        .get(ti)
        .and_then(|t| t.chains.get(ci))
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

/// The chain index a jump or goto of rule `r` in table `ti` enters.
fn jump_target(rs: &Ruleset, fam: Family, ti: usize, r: &Rule) -> Option<usize> {
    let name = r.target.as_ref()?.chain()?;
    rs.tables(fam).get(ti)?.chain_index(name)
}

/// Rule `r` of table `ti` as text ([`spec`]), the chain it enters named by its placeholder
/// (`@n`, in order of appearance) when it is not in the common part; that chain is queued the
/// first time.
fn own_text(
    rs: &Ruleset,
    fam: Family,
    ti: usize,
    r: &Rule,
    common: &HashSet<(usize, usize)>,
    names: &mut HashMap<(usize, usize), usize>,
    queue: &mut Vec<(usize, usize)>,
) -> String {
    let mut text = spec(fam, r);
    let Some(to) = jump_target(rs, fam, ti, r) else {
        return text;
    };
    if common.contains(&(ti, to)) {
        return text;
    }
    let n = names.len();
    let id = *names.entry((ti, to)).or_insert(n);
    if id == n {
        queue.push((ti, to));
    }
    // A jump's or goto's chain is the spec's last word.
    if let Some(cut) = text.rfind(' ') {
        text.truncate(cut);
        text.push_str(&format!(" @{id}"));
    }
    text
}

/// A rule's matches and target as text, without its comments (which match every packet).
fn spec(fam: Family, r: &Rule) -> String {
    if r.matches.iter().any(|m| matches!(m, Match::Comment(_))) {
        let mut c = r.clone();
        c.matches.retain(|m| !matches!(m, Match::Comment(_)));
        print_rule_spec(fam, &c)
    } else {
        print_rule_spec(fam, r)
    }
}

/// The fixed values: address ranges (a single address is a range of one) and ports, with
/// port ranges.
#[derive(Debug, Default)]
struct Fixed {
    addrs: HashSet<u32>,
    ranges: BTreeSet<(u32, u32)>,
    ports: HashSet<u32>,
    port_ranges: BTreeSet<(u32, u32)>,
}

/// A piece of rule text: an IPv4 address (with its prefix length, or the end of an address
/// range), a number, a range of numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    Addr(u32, Option<u8>),
    AddrRange(u32, u32),
    Num(u32),
    NumRange(u32, u32),
}

impl Fixed {
    /// Takes every value of `text` as fixed (`all`), or only its ranges (address prefixes
    /// shorter than 32 bits, address ranges, port ranges).
    fn scan(&mut self, text: &str, all: bool) {
        for (_, p) in pieces(text) {
            match p {
                Piece::Addr(a, None | Some(32)) if all => {
                    self.addrs.insert(a);
                }
                Piece::Addr(a, Some(n)) if n < 32 => {
                    let mask = if n == 0 { 0 } else { u32::MAX << (32 - n) };
                    self.ranges.insert((a & mask, (a & mask) | !mask));
                }
                Piece::AddrRange(a, b) => {
                    self.ranges.insert((a, b));
                    self.addrs.insert(a);
                    self.addrs.insert(b);
                }
                Piece::Num(n) if all => {
                    self.ports.insert(n);
                }
                Piece::NumRange(a, b) => {
                    self.port_ranges.insert((a, b));
                    self.ports.insert(a);
                    self.ports.insert(b);
                }
                _ => {}
            }
        }
    }

    /// The own part's text with chain names already placeholders, its private addresses and
    /// ports replaced by placeholders with their atoms; and the private values in order.
    fn abstracted(&self, lines: &[String]) -> (String, Vec<u32>, Vec<u32>) {
        let mut addrs: Vec<u32> = Vec::new();
        let mut ports: Vec<u32> = Vec::new();
        let mut sig = String::new();
        for l in lines {
            let mut last = 0;
            for ((start, end), p) in pieces(l) {
                let repl = match p {
                    Piece::Addr(a, None | Some(32)) if !self.addrs.contains(&a) => {
                        let i = slot(&mut addrs, a);
                        let atom: Vec<usize> = self
                            .ranges
                            .iter()
                            .enumerate()
                            .filter(|(_, (lo, hi))| *lo <= a && a <= *hi)
                            .map(|(r, _)| r)
                            .collect();
                        Some(format!("$a{i}{atom:?}"))
                    }
                    Piece::Num(n) if !self.ports.contains(&n) && port_position(l, start) => {
                        let i = slot(&mut ports, n);
                        let atom: Vec<usize> = self
                            .port_ranges
                            .iter()
                            .enumerate()
                            .filter(|(_, (lo, hi))| *lo <= n && n <= *hi)
                            .map(|(r, _)| r)
                            .collect();
                        Some(format!("$p{i}{atom:?}"))
                    }
                    _ => None,
                };
                if let Some(r) = repl {
                    sig.push_str(l.get(last..start).unwrap_or(""));
                    sig.push_str(&r);
                    last = end;
                }
            }
            sig.push_str(l.get(last..).unwrap_or(""));
            sig.push('\n');
        }
        (sig, addrs, ports)
    }
}

fn slot(v: &mut Vec<u32>, x: u32) -> usize {
    match v.iter().position(|y| *y == x) {
        Some(i) => i,
        None => {
            v.push(x);
            v.len() - 1
        }
    }
}

/// Whether the number at byte `start` of `l` is a port: the word after `--dport` or
/// `--sport`, or after the `:` of `--to-destination ADDR:PORT`.
fn port_position(l: &str, start: usize) -> bool {
    let before = l.get(..start).unwrap_or("");
    before.ends_with("--dport ") || before.ends_with("--sport ") || {
        let word = before.rsplit(' ').next().unwrap_or("");
        word.ends_with(':')
            && word.contains('.')
            && before.trim_end_matches(word).ends_with("--to-destination ")
    }
}

/// The values in `text` with their byte ranges: IPv4 addresses (`a.b.c.d`, `/n`, `a-b`),
/// numbers and `n:m` ranges. A word holding `$` (a placeholder, never iptables text) is skipped;
/// hexadecimal numbers (`0x…`) are not ports.
fn pieces(text: &str) -> Vec<((usize, usize), Piece)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or(0);
        let prev = if i == 0 {
            b' '
        } else {
            b.get(i - 1).copied().unwrap_or(b' ')
        };
        if !c.is_ascii_digit() || prev.is_ascii_alphanumeric() || prev == b'.' || prev == b'_' {
            i += 1;
            continue;
        }
        // A run of digits and dots.
        let mut j = i;
        while j < b.len() && b.get(j).is_some_and(|x| x.is_ascii_digit() || *x == b'.') {
            j += 1;
        }
        let word = text.get(i..j).unwrap_or("");
        if b.get(j)
            .is_some_and(|x| x.is_ascii_alphabetic() || *x == b'x')
        {
            i = j;
            continue;
        }
        if let Ok(a) = word.parse::<Ipv4Addr>() {
            let a = u32::from(a);
            let mut end = j;
            let mut piece = Piece::Addr(a, None);
            if b.get(j) == Some(&b'/') {
                let mut k = j + 1;
                while k < b.len() && b.get(k).is_some_and(u8::is_ascii_digit) {
                    k += 1;
                }
                if let Some(n) = text.get(j + 1..k).and_then(|s| s.parse::<u8>().ok()) {
                    piece = Piece::Addr(a, Some(n.min(32)));
                    end = k;
                }
            } else if b.get(j) == Some(&b'-') {
                let mut k = j + 1;
                while k < b.len() && b.get(k).is_some_and(|x| x.is_ascii_digit() || *x == b'.') {
                    k += 1;
                }
                if let Some(z) = text.get(j + 1..k).and_then(|s| s.parse::<Ipv4Addr>().ok()) {
                    piece = Piece::AddrRange(a, u32::from(z));
                    end = k;
                }
            }
            out.push(((i, end), piece));
            i = end;
            continue;
        }
        if word.contains('.') {
            i = j;
            continue;
        }
        let Ok(n) = word.parse::<u32>() else {
            i = j;
            continue;
        };
        if b.get(j) == Some(&b':') {
            let mut k = j + 1;
            while k < b.len() && b.get(k).is_some_and(u8::is_ascii_digit) {
                k += 1;
            }
            if let Some(m) = text.get(j + 1..k).and_then(|s| s.parse::<u32>().ok()) {
                out.push(((i, k), Piece::NumRange(n, m)));
                i = k;
                continue;
            }
        }
        out.push(((i, j), Piece::Num(n)));
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_reads_addresses_ranges_and_ports() {
        let p: Vec<Piece> = pieces(
            " -d 10.1.2.3/32 ! -s 10.244.0.0/16 -m tcp --dport 8080 --dports 1000:2000 -j DNAT --to-destination 10.244.1.2:80 -m mark --mark 0x539 -m iprange --dst-range 1.2.3.4-1.2.3.9",
        )
        .into_iter()
        .map(|(_, p)| p)
        .collect();
        let a = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            p,
            vec![
                Piece::Addr(a("10.1.2.3"), Some(32)),
                Piece::Addr(a("10.244.0.0"), Some(16)),
                Piece::Num(8080),
                Piece::NumRange(1000, 2000),
                Piece::Addr(a("10.244.1.2"), None),
                Piece::Num(80),
                Piece::AddrRange(a("1.2.3.4"), a("1.2.3.9")),
            ]
        );
    }

    #[test]
    fn a_port_is_abstracted_only_where_it_is_a_port() {
        let l = " -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.2.0.1:9090";
        let starts: Vec<(usize, Piece)> = pieces(l).into_iter().map(|((s, _), p)| (s, p)).collect();
        let ports: Vec<bool> = starts
            .iter()
            .filter(|(_, p)| matches!(p, Piece::Num(_)))
            .map(|(s, _)| port_position(l, *s))
            .collect();
        assert_eq!(ports, vec![true, true]);
        assert!(!port_position(
            " -m statistic --probability 0.5 --every 3",
            40
        ));
    }

    #[test]
    fn the_identity_is_required_on_shared_values() {
        assert!(compatible(&[1, 2], &[3, 4]));
        assert!(compatible(&[1, 2], &[1, 4]));
        assert!(!compatible(&[1, 2], &[2, 1]));
        assert!(!compatible(&[1, 2], &[3, 1]));
    }
}
