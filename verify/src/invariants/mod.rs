//! The invariant catalog: what a sidecar's rules must guarantee, each with a stable id, a
//! one-line statement filled in with the profile's values, and one definition of its violation.
//!
//! Each invariant is a file of its own here, implementing [`Invariant`]; the `catalog!` list
//! below names every one once, and from it come [`Id`], [`ALL`] and the dispatch of [`Id`]'s
//! methods, so an invariant cannot be declared and left out of the proofs (a test checks that
//! every file here is in the list and that the README names every id).
//!
//! The definition is written once against [`Dom`], a small vocabulary of facts about a
//! connection and its journey, and evaluated two ways: over Z3 terms ([`Symbolic`], a proof
//! over every connection) and over a concrete journey from the evaluator ([`Concrete`], for
//! sampling and for replaying every counterexample Z3 finds). A counterexample the evaluator
//! does not confirm means the SMT encoding is wrong, and `check` says so loudly.
//!
//! Two preconditions are deliberate and appear in the statements: a journey that starts at
//! the proxy's own capture listeners (destination port 15001 or 15006) is the proxy's business
//! (Istio's listeners black-hole those), so `no-redirect-loop` and `single-pass` range over the
//! other ports; outbound exclusions concern connections leaving the pod, so the outbound half of
//! `exclusions-respected` ranges over non-local destinations.
//!
//! Each invariant also gives its premise, the connections it speaks about (its violation
//! implies it): when the violation is unsatisfiable and so is the premise, the invariant is
//! `vacuous` (nothing was checked), never `holds` (see `crate::prove`).
//! Relational invariants (identity symmetry, dual-stack parity) speak of two connections and
//! their journeys: they implement [`Relation`] over [`Pair`] (see [`pair`]) and are listed
//! after `relations:` in the catalog; one connection alone never violates them
//! ([`Id::violation`] is false), the proof asks for a pair ([`Id::pair_violation`]).
//!
//! # Adding an invariant
//! Write `NAME.rs` here (its id with `_` for `-`) with a unit struct implementing [`Invariant`]
//! (or [`Relation`]), add one line to the `catalog!` list, and name the id in the README's list
//! of invariants.

mod concrete;
mod dom;
pub mod pair;
mod shared;
mod symbolic;

pub use concrete::Concrete;
pub use dom::Dom;
pub use pair::{ConcPair, Pair, Relation, SymPair};
pub use shared::{Conditions, Part, Words};
pub use symbolic::Symbolic;

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::Ruleset;

/// One invariant of the catalog: its id, its statement and the profile values it uses, and its
/// violation over [`Dom`].
///
/// Its contract: asserted over the scope of a proof (the first-packet facts, and routing unless
/// `--no-routing`), the violation is unsatisfiable if and only if the invariant holds for every
/// connection in that scope; evaluated over a concrete journey it is true if and only if that
/// connection breaks the invariant.
pub trait Invariant {
    /// The stable id (`kebab-case`; the file is named after it).
    const ID: &'static str;
    /// Whether the violation looks past the first hop (and so needs the journey encoded).
    const NEEDS_JOURNEY: bool;
    /// The profile values it uses when the profile sets them, besides its own lines
    /// ([`Invariant::uses`]); one that follows the journey uses `inbound_source` too.
    const ALSO_USES: &'static [Part];
    /// The one-line statement, with the profile's values.
    fn statement(p: &Profile, w: &Words) -> String;
    /// The profile values it always uses, as `name = value` lines.
    fn uses(p: &Profile) -> Vec<String>;
    /// The condition under which the connection violates the invariant.
    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B;
    /// The connections the invariant speaks about: the violation implies it. When no
    /// connection in scope meets it, the invariant is `vacuous` rather than `holds` (it has
    /// nothing to check: no captured inbound port, no metrics port, …).
    fn premise<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B;
}

/// Declares the catalog from one list of `Variant in module` lines, in report order: the
/// invariants of one connection ([`Invariant`]), then, after `; relations:`, those of two
/// ([`pair::Relation`]). It builds the modules, [`Id`], [`ALL`] and the dispatch of [`Id`]'s
/// methods to each module's unit struct (named like its variant).
macro_rules! catalog {
    ($($variant:ident in $module:ident),+ $(,)?
     ; relations: $($rvariant:ident in $rmodule:ident),+ $(,)?) => {
        $(pub mod $module;)+
        $(pub mod $rmodule;)+

        /// The invariants, by id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Id {
            $(
                #[doc = concat!("See [`", stringify!($module), "`].")]
                $variant,
            )+
            $(
                #[doc = concat!("See [`", stringify!($rmodule), "`].")]
                $rvariant,
            )+
        }

        /// Every invariant, in report order.
        pub const ALL: [Id; [$(stringify!($variant)),+ , $(stringify!($rvariant)),+].len()] =
            [$(Id::$variant,)+ $(Id::$rvariant),+];

        impl Id {
            /// The stable id.
            pub fn name(self) -> &'static str {
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::ID,)+
                    $(Id::$rvariant => <$rmodule::$rvariant as Relation>::ID,)+
                }
            }

            /// Whether the invariant looks past the first hop (a relation compares journeys).
            pub fn needs_journey(self) -> bool {
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::NEEDS_JOURNEY,)+
                    $(Id::$rvariant => true,)+
                }
            }

            /// Whether it relates two connections ([`pair::Relation`]) instead of speaking
            /// of one.
            pub fn is_relation(self) -> bool {
                match self {
                    $(Id::$variant => false,)+
                    $(Id::$rvariant => true,)+
                }
            }

            /// Whether its two connections are of different families (IPv4, then IPv6).
            pub fn cross_family(self) -> bool {
                match self {
                    $(Id::$variant => false,)+
                    $(Id::$rvariant => <$rmodule::$rvariant as Relation>::CROSS_FAMILY,)+
                }
            }

            fn also_uses(self) -> &'static [Part] {
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::ALSO_USES,)+
                    $(Id::$rvariant => <$rmodule::$rvariant as Relation>::ALSO_USES,)+
                }
            }

            /// The one-line statement, with the profile's values.
            pub fn statement(self, p: &Profile) -> String {
                let w = Words::new(p);
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::statement(p, &w),)+
                    $(Id::$rvariant => <$rmodule::$rvariant as Relation>::statement(p, &w),)+
                }
            }

            fn own_uses(self, p: &Profile) -> Vec<String> {
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::uses(p),)+
                    $(Id::$rvariant => <$rmodule::$rvariant as Relation>::uses(p),)+
                }
            }

            /// The condition under which the connection violates the invariant (false for a
            /// relation: one connection alone never violates it; see [`Id::pair_violation`]).
            pub fn violation<D: Dom>(self, d: &D, p: &Profile) -> D::B {
                let c = Conditions::new(d, p);
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::violation(d, p, &c),)+
                    $(Id::$rvariant => d.lit(false),)+
                }
            }

            /// For a relation, why no pair can meet its premise (nothing to compare), if so.
            pub fn vacuous(self, rs: &Ruleset, pod: &Pod, p: &Profile) -> Option<String> {
                match self {
                    $(Id::$variant => None,)+
                    $(Id::$rvariant => <$rmodule::$rvariant as Relation>::vacuous(rs, pod, p),)+
                }
            }

            /// For a relation, the condition under which the pair violates it in `pod`; none
            /// for an invariant of one connection.
            pub fn pair_violation<P: Pair>(
                self,
                pr: &P,
                p: &Profile,
                pod: &Pod,
            ) -> Option<<P::D as Dom>::B> {
                match self {
                    $(Id::$variant => None,)+
                    $(Id::$rvariant => Some(<$rmodule::$rvariant as Relation>::violation(pr, p, pod)),)+
                }
            }

            /// For a relation, the fields its two connections always share
            /// ([`Relation::SAME`]); none for an invariant of one connection.
            pub fn pair_same(self) -> &'static [pair::Field] {
                match self {
                    $(Id::$variant => &[],)+
                    $(Id::$rvariant => <$rmodule::$rvariant as Relation>::SAME,)+
                }
            }

            /// The connections the invariant speaks about ([`Invariant::premise`]); none for a
            /// relation, whose premise is over a pair ([`Id::vacuous`]).
            pub fn premise<D: Dom>(self, d: &D, p: &Profile) -> D::B {
                let c = Conditions::new(d, p);
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::premise(d, p, &c),)+
                    $(Id::$rvariant => d.lit(false),)+
                }
            }
        }
    };
}

catalog! {
    ProxyNotRecaptured in proxy_not_recaptured,
    MetricsBypass in metrics_bypass,
    InboundCaptured in inbound_captured,
    OutboundCaptured in outbound_captured,
    PassthroughNotRecaptured in passthrough_not_recaptured,
    LocalhostUntouched in localhost_untouched,
    NoRedirectLoop in no_redirect_loop,
    SinglePass in single_pass,
    ExclusionsRespected in exclusions_respected,
    PodLocal in pod_local,
    Dns in dns,
    ; relations:
    IdentitySymmetry in identity_symmetry,
    DualStackParity in dual_stack_parity,
}

impl Id {
    /// The id for a name.
    pub fn from_name(s: &str) -> Option<Id> {
        ALL.into_iter().find(|i| i.name() == s)
    }

    /// The profile values the invariant uses, as `name = value` lines: its own, then those of
    /// [`Invariant::ALSO_USES`] the profile sets (and `inbound_source` for one that follows the
    /// journey), in [`Part::ALL`]'s order.
    pub fn uses(self, p: &Profile) -> Vec<String> {
        let mut v = self.own_uses(p);
        for part in Part::ALL {
            let journey = part == Part::InboundSource && self.needs_journey();
            if journey || self.also_uses().contains(&part) {
                v.extend(part.line(p));
            }
        }
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::{Id, ALL};

    /// The files of this folder that are not invariants.
    const MACHINERY: [&str; 6] = ["mod", "dom", "concrete", "symbolic", "shared", "pair"];

    #[test]
    fn every_file_here_is_in_the_catalog_under_its_id() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/invariants");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().replace('_', "-"))
            .filter(|s| !MACHINERY.contains(&s.as_str()))
            .collect();
        files.sort();
        let mut ids: Vec<String> = ALL.iter().map(|i| i.name().to_string()).collect();
        ids.sort();
        assert_eq!(files, ids);
    }

    #[test]
    fn ids_are_distinct_and_found_by_name() {
        for id in ALL {
            assert_eq!(Id::from_name(id.name()), Some(id));
        }
        assert_eq!(Id::from_name("no-such-invariant"), None);
    }
}
