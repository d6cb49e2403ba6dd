//! Why an invariant holds: the rules its proof rests on (its *support*), and, in `diff`, the
//! invariants whose support the change touches. The semantics is in docs/proofs.md ("Why it
//! holds"); [`crate::prove::support`] computes both.

use serde::Serialize;
use sidecar_model::{Family, TableKind};

/// A rule an invariant rests on, named so that it can be found again in the ruleset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SupportRule {
    /// The family.
    pub family: Family,
    /// The table.
    pub table: TableKind,
    /// Which of the tables playing `table`'s part ([`sidecar_model::Ruleset::table_at`]).
    #[serde(skip_serializing_if = "sidecar_model::ast::is_first_part")]
    pub part: u8,
    /// The chain.
    pub chain: String,
    /// 1-based rule number.
    pub rule: u32,
    /// The rule as iptables-save prints it.
    pub text: String,
}

impl SupportRule {
    /// `TABLE CHAIN N` (with ` (IPv6)` for an IPv6 rule).
    pub fn place(&self) -> String {
        let fam = if self.family == Family::Ipv6 {
            " (IPv6)"
        } else {
            ""
        };
        format!("{} {} {}{fam}", self.table.name(), self.chain, self.rule)
    }
}

/// The rules an invariant that holds rests on: the invariant holds whatever the rules outside
/// this list match (their targets kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Support {
    /// The rules, in ruleset order (family, table, chain, number).
    pub rules: Vec<SupportRule>,
    /// Every rule of the list is needed (the minimisation finished); when false, the list is
    /// still a support, but some rule of it may not be needed.
    pub minimal: bool,
}

/// An invariant whose supporting rules (on the old ruleset) the change touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Touched {
    /// The invariant's id.
    pub id: &'static str,
    /// Its supporting rules on the old ruleset that the new ruleset changes or removes.
    pub rules: Vec<SupportRule>,
}
