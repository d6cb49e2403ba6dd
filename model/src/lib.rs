//! `sidecar-model`: what an iptables ruleset *is*.
//!
//! A typed model of the rulesets a service-mesh sidecar installs ([`ast`]; its match modules
//! in [`matches`](mod@matches) and its targets in [`targets`], each in one place), a parser for
//! every form they are found in ([`parse()`]), and the canonical printer that writes them back
//! exactly as `iptables-save` would ([`print`](mod@print)). Nothing here knows about solvers or
//! the command line.

#![deny(missing_docs)]

pub mod ast;
pub mod error;
pub mod eval;
pub mod flags;
pub mod gen;
pub mod matches;
pub mod mutate;
pub mod nft;
pub mod parse;
pub mod pod;
pub mod print;
pub mod profile;
pub mod synth;
pub mod targets;
pub mod validate;

pub use ast::*;
pub use error::ParseError;
pub use parse::{parse, Format, Parsed};
pub use print::print_ruleset;

/// The classic Istio sidecar ruleset (ISTIO_OUTPUT rules 1–9) as `iptables-save` prints it: the
/// default ruleset of every subcommand.
pub const DEFAULT_RULESET: &str = include_str!("../../corpus/istio-classic.rules");
