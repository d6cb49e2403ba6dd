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
//! at output) mangle's; `type filter` at 0 filter's and at 150 security's. Other priorities, two
//! tables in one part, or one table in two parts are refused as not supported yet, saying so:
//! evaluating them needs the model's tables ordered by priority rather than by part.
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
mod lex;
mod print;
mod script;
mod translate;

pub use print::{print_nft, rule_text};
pub use translate::{expressible, standard_base, translate};

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
        .is_some_and(|l| {
            let mut w = l.split_whitespace();
            let a = w.next().unwrap_or("");
            let b = w.next().unwrap_or("");
            matches!(
                (a, b),
                (
                    "add" | "flush" | "delete" | "insert" | "create" | "replace" | "destroy",
                    "table" | "chain" | "rule" | "ruleset" | "set" | "element" | "map"
                )
            ) || (a == "table" && matches!(b, "inet" | "ip" | "ip6" | "arp" | "bridge" | "netdev"))
        })
}

/// Reads an nft script or `nft list ruleset` output (`source` names it in errors).
pub fn parse(source: &str, text: &str) -> Result<Ruleset, ParseError> {
    let toks = lex::lex(source, text)?;
    script::load(&toks)
}
