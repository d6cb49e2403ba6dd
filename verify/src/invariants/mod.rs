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
//!
//! # Adding an invariant
//! Write `NAME.rs` here (its id with `_` for `-`) with a unit struct implementing [`Invariant`],
//! add one line to the `catalog!` list, and name the id in the README's list of invariants.

mod concrete;
mod dom;
mod shared;
mod symbolic;

pub use concrete::Concrete;
pub use dom::Dom;
pub use shared::{Conditions, Part, Words};
pub use symbolic::Symbolic;

use sidecar_model::pod::Profile;

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
/// modules, [`Id`], [`ALL`] and the dispatch of [`Id`]'s methods to each module's
/// [`Invariant`] (a unit struct named like its variant).
macro_rules! catalog {
    ($($variant:ident in $module:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// The invariants, by id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Id {
            $(
                #[doc = concat!("See [`", stringify!($module), "`].")]
                $variant,
            )+
        }

        /// Every invariant, in report order.
        pub const ALL: [Id; [$(stringify!($variant)),+].len()] = [$(Id::$variant),+];

        impl Id {
            /// The stable id.
            pub fn name(self) -> &'static str {
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::ID,)+
                }
            }

            /// Whether the invariant looks past the first hop.
            pub fn needs_journey(self) -> bool {
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::NEEDS_JOURNEY,)+
                }
            }

            fn also_uses(self) -> &'static [Part] {
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::ALSO_USES,)+
                }
            }

            /// The one-line statement, with the profile's values.
            pub fn statement(self, p: &Profile) -> String {
                let w = Words::new(p);
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::statement(p, &w),)+
                }
            }

            fn own_uses(self, p: &Profile) -> Vec<String> {
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::uses(p),)+
                }
            }

            /// The condition under which the connection violates the invariant.
            pub fn violation<D: Dom>(self, d: &D, p: &Profile) -> D::B {
                let c = Conditions::new(d, p);
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::violation(d, p, &c),)+
                }
            }

            /// The connections the invariant speaks about ([`Invariant::premise`]).
            pub fn premise<D: Dom>(self, d: &D, p: &Profile) -> D::B {
                let c = Conditions::new(d, p);
                match self {
                    $(Id::$variant => <$module::$variant as Invariant>::premise(d, p, &c),)+
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
    const MACHINERY: [&str; 5] = ["mod", "dom", "concrete", "symbolic", "shared"];

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
