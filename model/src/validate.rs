//! Whole-ruleset checks that iptables-restore or the kernel make when a ruleset loads: no jump
//! cycle, and every target and match only in the tables and hooks where the kernel accepts it.
//!
//! A user chain is checked against every hook from which it can be reached, and no user chain
//! may sit more than [`MAX_CHAIN_LEVEL`] jumps below a built-in chain (nf_tables' jump stack). A cycle is refused
//! even when no built-in chain reaches it (the kernel would only refuse it once one does), so
//! that every accepted ruleset has a finite evaluation.

use crate::ast::*;

/// A ruleset-level problem, located at the rule that shows it.
#[derive(Debug, Clone)]
pub struct ValidationError {
    /// 1-based line of the rule.
    pub line: usize,
    /// Byte range in that line.
    pub start: usize,
    /// End of the range.
    pub end: usize,
    /// What is wrong.
    pub message: String,
    /// A hint.
    pub help: Option<String>,
}

fn at(r: &Rule, message: String, help: Option<String>) -> ValidationError {
    ValidationError {
        line: r.origin.line as usize,
        start: r.origin.start as usize,
        end: r.origin.end as usize,
        message,
        help,
    }
}

/// Checks every table of both families.
pub fn validate(rs: &Ruleset) -> Result<(), ValidationError> {
    validate_with(rs, Vec::new())
}

/// [`validate`], with the jumps of the tables (IPv4's then IPv6's, in order) where the caller
/// knows them already (the loader resolved each jump's chain when it read the rule); a table
/// without (`None`, or past the end of `known`) has its jumps resolved by name.
pub(crate) fn validate_with(
    rs: &Ruleset,
    mut known: Vec<Option<Jumps>>,
) -> Result<(), ValidationError> {
    for (i, t) in rs.ipv4.iter().chain(&rs.ipv6).enumerate() {
        let jumps = match known.get_mut(i).and_then(Option::take) {
            Some(j) => j,
            None => Jumps::of(t),
        };
        check_cycles(t, &jumps)?;
        check_depth(t, &jumps)?;
        let hooks = hooks_along(t, &jumps);
        for (ci, c) in t.chains.iter().enumerate() {
            let h = hooks.get(ci).copied().unwrap_or(0);
            for r in &c.rules {
                check_rule(t.kind, &c.name, h, r)?;
            }
        }
    }
    Ok(())
}

/// Each chain's jumps and gotos to chains of the table, resolved once: `(rule, target chain)`
/// by chain index, in rule order, all chains' in one vector (chain `i`'s from `start[i]` to
/// `start[i + 1]`). A table of 100,000 chains has as many jumps, which every check below walks;
/// a name lookup per jump and per check was most of a large parse.
pub(crate) struct Jumps {
    edges: Vec<(u32, u32)>,
    start: Vec<usize>,
}

impl Jumps {
    /// The jumps of a table of `chains` chains from its list of `(chain, rule, target chain)`,
    /// each chain's in rule order.
    pub(crate) fn from_list(chains: usize, list: &[(u32, u32, u32)]) -> Jumps {
        let mut start = vec![0usize; chains + 1];
        for &(c, _, _) in list {
            if let Some(n) = start.get_mut(c as usize + 1) {
                *n += 1;
            }
        }
        for i in 1..start.len() {
            let before = start.get(i - 1).copied().unwrap_or(0);
            if let Some(n) = start.get_mut(i) {
                *n += before;
            }
        }
        let mut next = start.clone();
        let mut edges = vec![(0u32, 0u32); list.len()];
        for &(c, r, t) in list {
            if let Some(at) = next.get_mut(c as usize) {
                if let Some(e) = edges.get_mut(*at) {
                    *e = (r, t);
                }
                *at += 1;
            }
        }
        Jumps { edges, start }
    }

    fn of(t: &Table) -> Jumps {
        let mut index = crate::parse::names::ChainIndex::with_capacity(t.chains.len());
        for (i, c) in t.chains.iter().enumerate() {
            index.insert(&c.name, u32::try_from(i).unwrap_or(u32::MAX));
        }
        let mut edges = Vec::new();
        let mut start = Vec::with_capacity(t.chains.len() + 1);
        for c in &t.chains {
            start.push(edges.len());
            for (ri, r) in c.rules.iter().enumerate() {
                let Some(name) = r.target.as_ref().and_then(Target::chain) else {
                    continue;
                };
                if let Some(ti) = index.get(name) {
                    edges.push((u32::try_from(ri).unwrap_or(u32::MAX), ti));
                }
            }
        }
        start.push(edges.len());
        Jumps { edges, start }
    }

    /// Chain `chain`'s jumps: `(rule index, target chain index)`.
    fn from(&self, chain: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.slice(chain)
            .iter()
            .map(|&(r, t)| (r as usize, t as usize))
    }

    /// The same as a slice, in `u32`s.
    fn slice(&self, chain: usize) -> &[(u32, u32)] {
        let (a, b) = (
            self.start.get(chain).copied().unwrap_or(0),
            self.start.get(chain + 1).copied().unwrap_or(0),
        );
        self.edges.get(a..b).unwrap_or(&[])
    }
}

/// For each chain (by index), the set of hooks (bits of [`Hook::bit`]) from which it is reached.
pub fn reaching_hooks(t: &Table) -> Vec<u8> {
    hooks_along(t, &Jumps::of(t))
}

fn hooks_along(t: &Table, jumps: &Jumps) -> Vec<u8> {
    let mut hooks: Vec<u8> = t
        .chains
        .iter()
        .map(|c| {
            if c.is_builtin() {
                Hook::from_name(&c.name).map_or(0, Hook::bit)
            } else {
                0
            }
        })
        .collect();
    let mut work: Vec<usize> = (0..t.chains.len()).collect();
    while let Some(i) = work.pop() {
        let h = hooks.get(i).copied().unwrap_or(0);
        for (_, j) in jumps.from(i) {
            if let Some(hj) = hooks.get_mut(j) {
                if *hj | h != *hj {
                    *hj |= h;
                    work.push(j);
                }
            }
        }
    }
    hooks
}

/// Refuses any jump cycle among the table's chains (iteratively: no recursion on depth).
fn check_cycles(t: &Table, jumps: &Jumps) -> Result<(), ValidationError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Grey,
        Black,
    }
    let n = t.chains.len();
    let mut color = vec![Color::White; n];
    for root in 0..n {
        if color.get(root) != Some(&Color::White) {
            continue;
        }
        // Stack of (chain, next jump of it to look at).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        if let Some(c) = color.get_mut(root) {
            *c = Color::Grey;
        }
        while let Some(&mut (ci, ref mut ji)) = stack.last_mut() {
            if let Some(&(ri, ti)) = jumps.slice(ci).get(*ji) {
                let (ri, ti) = (ri as usize, ti as usize);
                *ji += 1;
                let Some(rule) = t.chains.get(ci).and_then(|c| c.rules.get(ri)) else {
                    continue;
                };
                let target = t.chains.get(ti).map_or("", |c| c.name.as_str());
                match color.get(ti) {
                    Some(Color::Grey) => {
                        let mut path: Vec<&str> = stack
                            .iter()
                            .skip_while(|(c, _)| *c != ti)
                            .filter_map(|(c, _)| t.chains.get(*c).map(|x| x.name.as_str()))
                            .collect();
                        path.push(target);
                        return Err(at(
                            rule,
                            format!("jump cycle in table `{}`: {}", t.kind, path.join(" -> ")),
                            Some("netfilter refuses rulesets whose jumps loop".into()),
                        ));
                    }
                    Some(Color::White) => {
                        if let Some(c) = color.get_mut(ti) {
                            *c = Color::Grey;
                        }
                        stack.push((ti, 0));
                    }
                    _ => {}
                }
            } else {
                if let Some(c) = color.get_mut(ci) {
                    *c = Color::Black;
                }
                stack.pop();
            }
        }
    }
    Ok(())
}

/// How many jumps or gotos below a built-in chain a user chain may sit. nf_tables' jump stack
/// holds 16 frames (`NFT_JUMP_STACK_SIZE`); a rule that would reach a user chain 16 levels down
/// from a built-in chain is refused when it is appended (iptables-restore v1.8.9, nf_tables:
/// `RULE_APPEND failed (Too many links)`, checked in a network namespace: 15 nested chains load,
/// 16 do not, for jumps and gotos alike; chains no built-in chain reaches are not limited).
pub const MAX_CHAIN_LEVEL: u32 = 15;

/// Refuses a jump or goto that would put a chain deeper than [`MAX_CHAIN_LEVEL`] below a
/// built-in chain; the error is at the earliest such rule in the input. Each chain's deepest
/// level is found by relaxation capped at the limit, so the work is at most
/// `MAX_CHAIN_LEVEL` times the number of jumps, however long the chain of jumps.
fn check_depth(t: &Table, jumps: &Jumps) -> Result<(), ValidationError> {
    let mut level: Vec<Option<u32>> = t
        .chains
        .iter()
        .map(|c| c.is_builtin().then_some(0))
        .collect();
    let mut work: Vec<usize> = (0..t.chains.len())
        .filter(|i| t.chains.get(*i).is_some_and(Chain::is_builtin))
        .collect();
    let mut first: Option<(&Rule, &str)> = None;
    while let Some(ci) = work.pop() {
        let (Some(Some(l)), Some(chain)) = (level.get(ci).copied(), t.chains.get(ci)) else {
            continue;
        };
        let next = l + 1;
        for (ri, ti) in jumps.from(ci) {
            let (Some(r), Some(name)) = (
                chain.rules.get(ri),
                t.chains.get(ti).map(|c| c.name.as_str()),
            ) else {
                continue;
            };
            if next > MAX_CHAIN_LEVEL {
                if first.is_none_or(|(f, _)| r.origin.line < f.origin.line) {
                    first = Some((r, name));
                }
                continue;
            }
            if let Some(slot) = level.get_mut(ti) {
                if slot.is_none_or(|x| x < next) {
                    *slot = Some(next);
                    work.push(ti);
                }
            }
        }
    }
    match first {
        None => Ok(()),
        Some((r, name)) => Err(at(
            r,
            format!(
                "jump depth {} at chain `{name}` exceeds the kernel's limit of {MAX_CHAIN_LEVEL} chains below a built-in chain",
                MAX_CHAIN_LEVEL + 1
            ),
            Some(
                "nf_tables' jump stack holds 16 levels; iptables-restore fails here with \
                 `Too many links`"
                    .into(),
            ),
        )),
    }
}

fn hook_names(bits: u8) -> String {
    let v: Vec<&str> = Hook::ALL
        .iter()
        .filter(|h| bits & h.bit() != 0)
        .map(|h| h.name())
        .collect();
    v.join(", ")
}

fn allowed(list: &[Hook]) -> u8 {
    list.iter().fold(0, |a, h| a | h.bit())
}

fn check_rule(table: TableKind, chain: &str, hooks: u8, r: &Rule) -> Result<(), ValidationError> {
    if let Some(t) = &r.target {
        if let Some((want_table, want_hooks)) = t.def().and_then(|d| d.allowed) {
            if table != want_table {
                return Err(at(
                    r,
                    format!(
                        "target `{}` is only valid in the `{want_table}` table, not `{table}`",
                        t.name()
                    ),
                    Some(format!(
                        "the kernel refuses `{}` outside `{want_table}`",
                        t.name()
                    )),
                ));
            }
            let bad = hooks & !allowed(want_hooks);
            if bad != 0 {
                return Err(at(
                    r,
                    format!("target `{}` in chain `{chain}`, which is reached from {}, where the kernel refuses it", t.name(), hook_names(bad)),
                    Some(format!("`{}` is valid only in {}", t.name(), hook_names(allowed(want_hooks)))),
                ));
            }
        }
    }
    for m in &r.matches {
        if let Some(list) = m.hooks() {
            let name = m.name();
            let bad = hooks & !allowed(list);
            if bad != 0 {
                return Err(at(
                    r,
                    format!("match `{name}` in chain `{chain}`, which is reached from {}, where the kernel refuses it", hook_names(bad)),
                    Some(format!("`-m {name}` is valid only in {}", hook_names(allowed(list)))),
                ));
            }
        }
    }
    Ok(())
}
