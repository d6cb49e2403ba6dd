//! The SMT encoding: a ruleset, the pod around it and the proxy's re-connections as
//! quantifier-free bit-vector terms over one symbolic first packet (Z3, through the `z3` crate
//! and the system's libz3).
//!
//! The encoding mirrors the concrete evaluator ([`sidecar_model::eval`]) and the pod model
//! ([`sidecar_model::pod::Simulator::hop`]) decision for decision, so that a packet fixed in the
//! solver gives exactly the hits, verdict and delivery the evaluator computes (a property the test
//! suite checks on random rulesets and packets):
//!
//! * every header field is a bit-vector of the width of the model's field, named once in
//!   [`sorts`] ([`IPV4_BITS`] or [`IPV6_BITS`] for addresses, one family per encoding;
//!   [`PORT_BITS`], [`UID_BITS`], [`MARK_BITS`], …), and the conntrack state a code of
//!   [`CT_BITS`];
//! * interfaces are a finite enumeration ([`Ifaces`]): "none", `lo`, `eth0`, every name the
//!   ruleset mentions, one name per `+` pattern that no listed name stands for, and one name
//!   that no pattern matches;
//! * a table is unrolled along its (acyclic) jump graph: each rule gets a `reach` term (control
//!   stands before it) and a `fires` term (its matches hold there); targets that change the
//!   packet (MARK, CONNMARK, REDIRECT, DNAT, TPROXY, …) update the symbolic state guarded by
//!   `fires`; jump, goto and RETURN follow the kernel's stack discipline; no depth limit beyond
//!   the size budget;
//! * nat runs only for NEW connections, and only when some rule turns connection tracking on
//!   ([`sidecar_model::eval::conntrack_active`]);
//! * a match the model cannot interpret (`-m socket`, `-m set`, `-m statistic`, unknown
//!   modules, owner names) is a fresh free boolean at each place it is tried, so a proof holds
//!   whichever way it goes; with [`Encoder::undecided_free`] off it is false, as the evaluator
//!   takes it.
//!
//! A hop runs the first packet through OUTPUT, POSTROUTING and, over lo, PREROUTING (no second
//! nat decision) and INPUT; or, from outside, PREROUTING and INPUT. A journey chains hops
//! through the proxy's listeners as [`sidecar_model::pod::Simulator::journey`] does, up to the
//! profile's hop bound plus one, with its loop detection.
//!
//! By phase, one module each: [`sorts`] (the widths, [`SymPacket`], [`Ifaces`], the term
//! helpers), [`encode`] (ruleset → terms: [`Encoder`], the chains, a hop, a journey; the match
//! modules' encodings beside it in `matches.rs`), [`solve`] (solvers, queries, steering),
//! [`concretize`] (values out of models, through [`Concretize`]), [`shape`] (when two journeys
//! differ, symbolically and concretely, for `diff` and the relational invariants). [`agree`] runs the encoding on
//! one fixed packet against the evaluator. The items callers use are re-exported here.

pub mod agree;
pub mod concretize;
pub mod encode;
mod error;
mod matches;
pub mod shape;
pub mod solve;
pub mod sorts;

pub use concretize::{bits_addr, truth, value, Concretize};
pub use encode::chain::{RuleId, SymHit};
pub use encode::hop::SymHop;
pub use encode::journey::SymJourney;
pub use encode::{Encoder, BUDGET};
pub use error::EncodeError;
pub use sorts::{
    addr_bits, addr_width, all, and2, any, bv, Ifaces, SymPacket, CT_BITS, GID_BITS,
    HOP_COUNT_BITS, IF_BITS, IF_ETH0, IF_LO, IF_NONE, IPV4_BITS, IPV6_BITS, MARK_BITS, MAX_IFACES,
    PORT_BITS, PROTO_BITS, TCP_FLAGS_BITS, UID_BITS,
};
// For the phases' own use (not part of the encoding's interface).
use sorts::{ct_code, or2};
