//! An iptables ruleset as native nft tables, as `iptables-translate` would write it: each
//! iptables table of a family becomes an `ip`/`ip6` table named `sv-<table>` whose base chains
//! keep the built-in chains' names, hooks, policies and iptables-nft's priorities. It is how the
//! random generator's rulesets become nft rulesets for the kernel oracle: the model runs both
//! the same way, so any disagreement with the kernel is one of the nft front end, its printer or
//! the evaluator.

use crate::ast::{
    BaseChain, ChainType, Family, Hook, NftFamily, NftTable, Rule, Ruleset, Table, TableKind,
    Target,
};
use crate::matches::Match;

/// Where iptables-nft registers the built-in chain `hook` of `kind`.
pub fn standard_base(kind: TableKind, hook: Hook) -> BaseChain {
    let (ty, priority) = match (kind, hook) {
        (TableKind::Nat, Hook::Prerouting | Hook::Output) => (ChainType::Nat, -100),
        (TableKind::Nat, _) => (ChainType::Nat, 100),
        (TableKind::Raw, _) => (ChainType::Filter, -300),
        (TableKind::Mangle, Hook::Output) => (ChainType::Route, -150),
        (TableKind::Mangle, _) => (ChainType::Filter, -150),
        (TableKind::Filter, _) => (ChainType::Filter, 0),
        (TableKind::Security, _) => (ChainType::Filter, 150),
    };
    BaseChain { ty, hook, priority }
}

/// Whether nft can write `r` with the expressions and statements this module's printer knows,
/// meaning what the model means by it.
pub fn expressible(r: &Rule) -> bool {
    r.fragment.is_none()
        && r.matches
            .iter()
            .filter(|m| matches!(m, Match::Comment(_)))
            .count()
            <= 1
        && r.matches.iter().all(match_expressible)
        && r.target.as_ref().is_none_or(target_expressible)
}

fn match_expressible(m: &Match) -> bool {
    match m {
        Match::Tcp(t) => t.flags.is_none(),
        Match::Udp(_) | Match::Mark(_) | Match::Connmark(_) => true,
        // nft refuses an empty range; iptables takes one and matches nothing.
        Match::Iprange(r) => r.src.iter().chain(&r.dst).all(|n| n.value.lo <= n.value.hi),
        Match::Multiport(mp) => mp.dir != crate::matches::PortDir::Either,
        Match::Owner(o) => {
            o.socket_exists.is_none() && !o.suppl_groups && (o.uid.is_some() || o.gid.is_some())
        }
        // nft's `ct state != a,b` compares the state with a|b (always true for two states or
        // more), where iptables' `! --ctstate a,b` is "in neither": only one state negates alike.
        Match::Conntrack(c) => {
            c.ctstate.value.iter().all(nft_state)
                && (!c.ctstate.negated || c.ctstate.value.len() == 1)
        }
        Match::State(s) => {
            s.0.value.iter().all(nft_state) && (!s.0.negated || s.0.value.len() == 1)
        }
        Match::Addrtype(a) => {
            !a.limit_iface_in
                && !a.limit_iface_out
                && (a.src.is_none() != a.dst.is_none())
                && a.src.iter().chain(&a.dst).all(|n| n.value.len() == 1)
        }
        Match::Socket(s) => s.transparent && !s.nowildcard && !s.restore_skmark,
        Match::Comment(c) => !c.text.is_empty() && !c.text.contains(['"', '\\']),
        _ => false,
    }
}

fn nft_state(s: &crate::matches::CtState) -> bool {
    use crate::matches::CtState::*;
    matches!(s, Invalid | New | Related | Established | Untracked)
}

fn target_expressible(t: &Target) -> bool {
    let xmark_and_or = |m: &crate::ast::MarkMask| m.mask == u32::MAX || m.value & !m.mask == 0;
    match t {
        Target::Accept
        | Target::Drop
        | Target::Return
        | Target::Jump { .. }
        | Target::Goto { .. }
        | Target::Notrack => true,
        Target::Reject { with } => {
            with.is_empty() || with == "icmp-port-unreachable" || with == "icmp6-port-unreachable"
        }
        Target::Redirect { random, .. } => !random,
        Target::Tproxy { mark, .. } => xmark_and_or(mark),
        Target::Mark(m) | Target::ConnmarkSet(m) => xmark_and_or(m),
        Target::ConnmarkSave { nfmask, ctmask } | Target::ConnmarkRestore { nfmask, ctmask } => {
            *nfmask == u32::MAX && *ctmask == u32::MAX
        }
        Target::Ct { notrack, zone } => match (notrack, zone) {
            (true, None) => true,
            (false, Some(z)) => z.orig.is_none(),
            _ => false,
        },
        Target::Dnat {
            to,
            random,
            persistent,
        } => !random && !persistent && to.addr_lo.is_some(),
        Target::Snat {
            to,
            random,
            random_fully,
            persistent,
        } => !random && !random_fully && !persistent && to.addr_lo.is_some(),
        Target::Masquerade {
            random,
            random_fully,
            ..
        } => !random && !random_fully,
        Target::Log { prefix, flags, .. } => {
            flags.is_empty() && prefix.as_ref().is_none_or(|p| !p.contains('"'))
        }
        Target::Nflog { .. } | Target::Unknown { .. } => false,
    }
}

/// `rs`'s iptables tables as native nft tables (tables already native are kept); rules nft cannot
/// write ([`expressible`]) are left out, and the count of those is returned with the ruleset.
pub fn translate(rs: &Ruleset) -> (Ruleset, usize) {
    let mut dropped = 0;
    let mut out = Ruleset::default();
    for family in [Family::Ipv4, Family::Ipv6] {
        let nft_family = match family {
            Family::Ipv4 => NftFamily::Ip,
            Family::Ipv6 => NftFamily::Ip6,
        };
        for t in rs.tables(family) {
            if t.nft.is_some() {
                push(&mut out, family, t.clone());
                continue;
            }
            let mut chains = t.chains.clone();
            for c in &mut chains {
                if let Some(h) = c.hook() {
                    c.base = Some(standard_base(t.kind, h));
                }
                let before = c.rules.len();
                c.rules.retain(expressible);
                dropped += before - c.rules.len();
                for r in &mut c.rules {
                    r.family = Some(family);
                    r.nft = None;
                }
            }
            let seq = u32::try_from(out.ipv4.len() + out.ipv6.len()).unwrap_or(u32::MAX);
            push(
                &mut out,
                family,
                Table {
                    kind: t.kind,
                    chains,
                    nft: Some(NftTable {
                        family: nft_family,
                        name: format!("sv-{}", t.kind.name()),
                        seq,
                    }),
                },
            );
        }
    }
    (out, dropped)
}

/// Two rulesets of native nft tables in one namespace, `newer`'s tables created after
/// `older`'s and renamed (`sv-nat` → `sv2-nat`, any other name suffixed `-2`): every place both
/// use then holds two tables, which run newest first ([`crate::eval::hook_plan`]).
pub fn stack(older: Ruleset, newer: Ruleset) -> Ruleset {
    let mut out = older;
    let offset = u32::try_from(out.ipv4.len() + out.ipv6.len()).unwrap_or(u32::MAX);
    let mut newer = newer;
    for t in newer.ipv4.iter_mut().chain(newer.ipv6.iter_mut()) {
        if let Some(n) = t.nft.as_mut() {
            n.name = match n.name.strip_prefix("sv-") {
                Some(rest) => format!("sv2-{rest}"),
                None => format!("{}-2", n.name),
            };
            n.seq = n.seq.saturating_add(offset);
        }
    }
    out.ipv4.extend(newer.ipv4);
    out.ipv6.extend(newer.ipv6);
    out
}

fn push(rs: &mut Ruleset, family: Family, t: Table) {
    match family {
        Family::Ipv4 => rs.ipv4.push(t),
        Family::Ipv6 => rs.ipv6.push(t),
    }
}
