//! `sidecar-verify`: what an iptables ruleset *does*, checked.
//!
//! This crate holds the command-line tool and, as issues land, the evaluator's checkers: the SMT
//! encoding, the invariant catalog, the semantic diff, the reports and the kernel oracle. The
//! typed model itself lives in [`sidecar_model`].
//!
//! Each layer uses only those below it: [`smt`] (the encoding, and [`smt::solve`]) and
//! [`invariants`] (the properties, written once over [`invariants::Dom`]); [`prove`] (the proofs
//! about one ruleset); [`check`] and [`diff`], which fill in [`results`] and never use each other;
//! [`report`], which renders [`results`] whichever command filled them in; and [`cli`], the edge.

#![deny(missing_docs)]

pub mod cases;
pub mod check;
pub mod cli;
pub mod corpus;
pub mod diff;
pub mod generator;
pub mod input;
pub mod invariants;
pub mod journey_text;
pub mod kernel;
pub mod live;
pub mod mutate;
pub mod netns;
pub mod progress;
pub mod prove;
pub mod report;
pub mod results;
pub mod scenarios;
pub mod smt;
pub mod term;
