//! What `check` finds: every invariant's result and every rule's reachability.

use std::net::IpAddr;

use serde::Serialize;
use sidecar_model::eval::Packet;
use sidecar_model::{Family, TableKind};

use super::InvariantResult;

/// A rule's reachability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    /// A routable connection hits it.
    Live,
    /// Only packets routing never produces (or later packets of a connection) hit it.
    Unroutable,
    /// Packets reach it, but none matches there.
    Shadowed,
    /// No packet reaches it.
    Unreachable,
    /// The solver gave up.
    Unknown,
}

/// A rule by chain and 1-based number (within the reported rule's table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleAt {
    /// The chain.
    pub chain: String,
    /// 1-based rule number.
    pub rule: u32,
}

/// One rule's reachability.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
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
    /// Its status.
    pub status: RuleStatus,
    /// The earlier rules responsible (shadowed, unreachable).
    pub by: Vec<RuleAt>,
    /// For an unroutable rule: a packet that hits it (routing never produces it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet: Option<Packet>,
}

/// Facts about the ruleset checked.
#[derive(Debug, Clone, Serialize)]
pub struct RulesetInfo {
    /// SHA-256 of the canonical print.
    pub sha256: String,
}

/// Everything `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The ruleset.
    pub ruleset: RulesetInfo,
    /// The profile's name.
    pub profile: String,
    /// The pod's addresses.
    pub pod_ips: Vec<IpAddr>,
    /// Whether the proofs range over routable connections only.
    pub routing: bool,
    /// The invariants.
    pub invariants: Vec<InvariantResult>,
    /// Every rule's reachability.
    pub rules: Vec<RuleResult>,
    /// Rules with matches or targets the model cannot interpret (free in the proofs).
    pub undecided: Vec<RuleAtTable>,
    /// What the reader of the results should know beyond the invariants (several tables
    /// capturing connections at one place, say).
    pub warnings: Vec<String>,
}

/// A rule by family, table, chain and number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleAtTable {
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
}

impl Report {
    /// Whether every invariant holds or is vacuous (nothing violated, nothing unknown).
    pub fn all_hold(&self) -> bool {
        self.invariants.iter().all(|i| i.status.passes())
    }
}
