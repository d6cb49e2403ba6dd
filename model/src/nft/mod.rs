//! nftables as a front end and a print form: nft scripts as mesh generators write them (`add
//! table inet …`, `flush table`, `add chain … { type nat hook output priority -100 ; }`, `add rule
//! …`, `insert rule … index N`, `delete …`) and the block form `nft list ruleset` prints (`table
//! inet x { chain y { … } }`) are read into the same [`Ruleset`] as iptables' forms, and printed
//! back as `nft list ruleset` prints them.
//!
//! # How an nft table becomes the model's
//!
//! The model runs, per family and hook, the iptables tables at their iptables-nft priorities (raw
//! -300, mangle -150, nat -100/100, filter 0, security 150). An nft table joins them in the part
//! of the iptables table whose base chains it has: `type nat` at -100 (prerouting, output) or 100
//! (input, postrouting) is nat's; `type filter` at -300 raw's; `type filter` at -150 (`type route`
//! at output) mangle's; `type filter` at 0 filter's and at 150 security's. That part is the
//! table's label (a table with base chains elsewhere is labelled by its first base chain's type
//! and priority); where each base chain runs is its own: [`crate::eval::hook_plan`] orders every
//! base chain of a hook by priority, the nat ones inside the nat core, the newest first at equal
//! priority. Several tables may share a label: they are kept in the order they were created, and
//! a hit names its table by label and ordinal ([`crate::Ruleset::table_at`]). A nat chain before
//! connection tracking (priority -200 or lower) is refused, as the kernel refuses it.
//!
//! An `inet` table is held whole by both families; each rule that reads an IPv4 or IPv6 header
//! (`ip daddr …`, `meta nfproto ipv6`, `dnat ip to …`) carries that family in [`Rule::family`]
//! and never matches a packet of the other, as nft's implicit `meta nfproto` dependency makes it.
//!
//! Expressions and statements are lowered onto the match modules and targets iptables' rules use
//! (the table is in [`expr`]); how a rule was written (which expression came first, where its
//! `counter` stood) is kept in its [`Layout`] for the printer, outside equality. What the model does
//! not know is kept verbatim and is undecidable, never dropped.

mod expr;
pub mod json;
mod lex;
mod print;
mod script;
mod translate;

pub use print::{print_nft, rule_text};
pub use translate::{expressible, stack, standard_base, translate};

use crate::ast::{NftFamily, Ruleset};
use crate::error::ParseError;

/// The name an nft expression or statement sequence kept verbatim goes by (in
/// [`Match::Unknown`](crate::Match) and [`Target::Unknown`](crate::Target)).
pub const VERBATIM: &str = "nft";

/// How an nft rule was written: its expressions and statements in order, each naming the part
/// of the [`Rule`](crate::Rule) that holds it.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The family of the rule's table (`dnat ip to` in an `inet` table, `dnat to` in an `ip` one).
    pub family: NftFamily,
    /// In the order written.
    pub items: Vec<Item>,
}

impl PartialEq for Layout {
    fn eq(&self, _: &Layout) -> bool {
        true
    }
}
impl Eq for Layout {}

/// One expression or statement of an nft rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// The protocol test ([`Rule::proto`](crate::Rule)), as written.
    Proto(ProtoWord),
    /// `meta nfproto` ([`Rule::family`](crate::Rule)).
    NfProto,
    /// `ip saddr` / `ip6 saddr`.
    Src,
    /// `ip daddr` / `ip6 daddr`.
    Dst,
    /// `iifname` (`iif` when `index`).
    InIface {
        /// Written as `iif`.
        index: bool,
    },
    /// `oifname` (`oif` when `index`).
    OutIface {
        /// Written as `oif`.
        index: bool,
    },
    /// The next of the rule's matches.
    Match,
    /// The next of the rule's matches, a port test written with `th`.
    Th,
    /// `counter`.
    Counter,
    /// The `n`th statement of the rule's target.
    Stmt(usize),
}

/// How a protocol test was spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoWord {
    /// `meta l4proto`.
    L4proto,
    /// `ip protocol`.
    IpProtocol,
    /// `ip6 nexthdr`.
    Ip6Nexthdr,
}

/// Whether `text`'s first command is nft's (`add table …`, `table inet x {`, `flush ruleset`).
pub fn looks_like_nft(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(is_nft_command)
}

/// Whether `line` (trimmed) begins with an nft command.
pub(crate) fn is_nft_command(line: &str) -> bool {
    let mut w = line.split_whitespace();
    let a = w.next().unwrap_or("");
    let b = w.next().unwrap_or("");
    matches!(
        (a, b),
        (
            "add" | "flush" | "delete" | "insert" | "create" | "replace" | "destroy",
            "table" | "chain" | "rule" | "ruleset" | "set" | "element" | "map"
        )
    ) || (a == "table" && matches!(b, "inet" | "ip" | "ip6" | "arp" | "bridge" | "netdev"))
}

/// Reads an nft script or `nft list ruleset` output (`source` names it in errors).
pub fn parse(source: &str, text: &str) -> Result<Ruleset, ParseError> {
    let toks = lex::lex(source, text)?;
    script::load(&toks)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use std::net::IpAddr;

    use crate::eval::{Engine, Packet, Scratch, Trace};
    use crate::{Family, Hook, TableKind};

    /// An inet nat table with a rule of each family and one of both.
    const INET: &str = "add table inet t\n\
        add chain inet t output { type nat hook output priority -100 ; }\n\
        add rule inet t output ip daddr != 127.0.0.1 tcp dport 80 counter redirect to :15001\n\
        add rule inet t output ip6 daddr != ::1 tcp dport 80 counter redirect to :15002\n\
        add rule inet t output meta l4proto tcp counter accept\n\
        insert rule inet t output index 2 tcp dport 81 counter redirect to :15003\n";

    fn hits(rs: &crate::Ruleset, src: &str, dst: &str, dport: u16) -> Vec<u32> {
        let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let mut p = Packet::tcp_out(s, d, 40000, dport, 1000, 1000);
        let mut t = Trace::default();
        Engine::new(rs).run_hook(Hook::Output, &mut p, &mut Scratch::default(), &mut t);
        t.hits.iter().map(|h| h.rule).collect()
    }

    /// An inet table is held by both families, whole and in the same order; each rule that reads
    /// an IPv4 or IPv6 header matches only packets of that family (nft's implicit `meta nfproto`
    /// dependency); `insert … index 2` goes before the third rule.
    #[test]
    fn an_inet_table_runs_in_both_families_each_rule_in_its_own() {
        let rs = crate::parse("inet", INET.as_bytes()).unwrap().ruleset;
        assert_eq!(rs.ipv4.len(), 1);
        assert_eq!(rs.ipv4, rs.ipv6);
        assert_eq!(rs.ipv4[0].kind, TableKind::Nat);
        assert_eq!(rs.ipv4[0].chains[0].rules.len(), 4);
        assert_eq!(rs.ipv4[0].chains[0].rules[1].family, Some(Family::Ipv6));
        // IPv4 to port 80: the ip rule redirects (rule 0); the ip6 rule is never reached.
        assert_eq!(hits(&rs, "10.1.0.5", "10.1.0.99", 80), [0]);
        // IPv6 to port 80: the ip rule does not match (even with its `!=`), the ip6 rule does.
        assert_eq!(hits(&rs, "fd00::5", "fd00::99", 80), [1]);
        // Port 81, both families: the inserted rule, third.
        assert_eq!(hits(&rs, "10.1.0.5", "10.1.0.99", 81), [2]);
        assert_eq!(hits(&rs, "fd00::5", "fd00::99", 81), [2]);
    }

    /// A mutant of an inet table's rule edits both families' copies, and is made once.
    #[test]
    fn an_inet_rule_is_mutated_once_in_both_copies() {
        let rs = crate::parse("inet", INET.as_bytes()).unwrap().ruleset;
        let mutants = crate::mutate::mutants(&rs);
        let deletes = mutants
            .iter()
            .filter(|(m, _)| m.operator == crate::mutate::Operator::DeleteRule)
            .count();
        assert_eq!(deletes, 4);
        for (m, mutant) in &mutants {
            assert_eq!(mutant.ipv4, mutant.ipv6, "{m:?}");
        }
    }

    /// `flush table` empties the chains it keeps; `add table` of a table there changes nothing.
    #[test]
    fn flush_and_add_act_as_nft_does() {
        let text = format!(
            "{INET}add table inet t\nflush table inet t\nadd rule inet t output counter accept\n"
        );
        let rs = crate::parse("flush", text.as_bytes()).unwrap().ruleset;
        assert_eq!(rs.ipv4[0].chains.len(), 1);
        assert_eq!(rs.ipv4[0].chains[0].rules.len(), 1);
    }
}
