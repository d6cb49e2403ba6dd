//! `sidecar-verify`: what an iptables ruleset *does*, checked.
//!
//! This crate holds the command-line tool and, as issues land, the evaluator's checkers: the SMT
//! encoding, the invariant catalog, the semantic diff, the reports and the kernel oracle. The
//! typed model itself lives in [`sidecar_model`].

#![deny(missing_docs)]

pub mod cases;
pub mod check;
pub mod cli;
pub mod corpus;
pub mod diff;
pub mod input;
pub mod invariants;
pub mod journey_text;
pub mod kernel;
pub mod netns;
pub mod report;
pub mod scenarios;
pub mod smt;
