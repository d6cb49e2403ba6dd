//! `mutate`: where the invariant catalog is blind. Every single-rule mutant of the ruleset
//! ([`sidecar_model::mutate::mutants`]) is reloaded (the kernel's load-time checks: a refused
//! one is *invalid*), diffed against the ruleset ([`crate::diff::first_change`]: no routable
//! change makes it *equivalent*), and only then proved ([`crate::prove::invariants`]): an
//! invariant that holds on the ruleset and is violated on the mutant *kills* it, and so does
//! one the ruleset violates too when the mutant breaks it at a connection where the ruleset
//! keeps it ([`mask::new_violation`]); a mutant that changes only connections an invariant the
//! ruleset violates already reports is *masked* ([`mask::masked`]); one that changes behaviour
//! otherwise *survives*, unless the acceptance file ([`accept`]) accepts it with a reason. A mutant neither killed nor shown equivalent (an
//! undecided query, an internal error) is *unknown* and fails the run like a survivor.
//!
//! All mutants run in this one process, sharing Z3's thread-local context.

pub mod accept;
pub mod mask;

use std::time::Instant;

use sidecar_model::mutate::{mutations, Mutation};
use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{parse, print_ruleset, Ruleset};

use crate::diff;
use crate::invariants::Id;
use crate::prove::{self, ProveError};
use crate::results::mutate::{Change, Class, Counts, Kill, MutantResult, Report};
use crate::results::Status;

pub use accept::{AcceptError, Acceptance};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Per-query solver timeout in milliseconds (a timeout makes the mutant unknown).
    pub timeout_ms: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options { timeout_ms: 30_000 }
    }
}

/// Runs every mutant of `rs` in `pod` with `profile`; `accepts` are the accepted survivors.
/// Each mutant done is a step of the phase "checking the mutants" ([`crate::progress`]).
///
/// # Example
/// ```
/// use sidecar_model::pod::{Pod, Profile};
/// use sidecar_model::parse;
/// use sidecar_verify::mutate::{mutate, Options};
///
/// let text = "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p tcp -m owner ! --uid-owner 1337 -j REDIRECT --to-ports 15001\nCOMMIT\n";
/// let rs = parse("r", text.as_bytes()).unwrap().ruleset;
/// let report = mutate(&rs, &Pod::default(), &Profile::istio(), &[], &Options::default()).unwrap();
/// assert_eq!(report.counts.mutants, report.mutants.len());
/// ```
pub fn mutate(
    rs: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    accepts: &[Acceptance],
    opts: &Options,
) -> Result<Report, ProveError> {
    // Each mutant made when its turn comes: a node's table has too many to hold at once.
    run_each(
        rs,
        mutations(rs),
        |e| e.apply(rs),
        pod,
        profile,
        accepts,
        opts,
    )
}

/// [`mutate`] on the mutants given (a part of [`sidecar_model::mutate::mutants`]`(rs)`, say those of one rule).
pub fn run(
    rs: &Ruleset,
    all: Vec<(Mutation, Ruleset)>,
    pod: &Pod,
    profile: &Profile,
    accepts: &[Acceptance],
    opts: &Options,
) -> Result<Report, ProveError> {
    run_each(rs, all, |m| m, pod, profile, accepts, opts)
}

/// [`run`] on the mutants `make` makes of `all`'s items, one at a time, when their turn comes
/// and the deadline has not passed.
fn run_each<M>(
    rs: &Ruleset,
    all: Vec<(Mutation, M)>,
    make: impl Fn(M) -> Ruleset,
    pod: &Pod,
    profile: &Profile,
    accepts: &[Acceptance],
    opts: &Options,
) -> Result<Report, ProveError> {
    let start = Instant::now();
    let popts = prove::Options {
        routing: true,
        timeout_ms: opts.timeout_ms,
        ..Default::default()
    };
    let dopts = diff::Options {
        max_classes: 1,
        timeout_ms: opts.timeout_ms,
        ..Default::default()
    };
    let original = prove::invariants(rs, pod, profile, &popts)?;
    let total = all.len();
    let mut results = Vec::with_capacity(total);
    crate::progress::phase("checking the mutants", total);
    for (mutation, mutant) in all {
        let mut r = MutantResult {
            mutation,
            class: Class::Unknown,
            change: None,
            killed_by: Vec::new(),
            masked_by: Vec::new(),
            reason: None,
        };
        if crate::smt::solve::deadline_passed() {
            // The mutants left are not even made: a node's table has hundreds of thousands.
            r.reason = Some(crate::smt::solve::DEADLINE_PASSED.into());
        } else {
            let mutant = make(mutant);
            crate::progress::within(|| {
                classify(rs, &mutant, pod, profile, &original, &popts, &dopts, &mut r);
            });
        }
        crate::progress::step();
        if r.class == Class::Survivor {
            if let Some(a) = accepts.iter().find(|a| a.matches(&r.mutation)) {
                r.class = Class::Accepted;
                r.reason = Some(a.reason.clone());
            }
        }
        results.push(r);
    }
    let count = |c: Class| results.iter().filter(|m| m.class == c).count();
    let counts = Counts {
        mutants: results.len(),
        invalid: count(Class::Invalid),
        equivalent: count(Class::Equivalent),
        killed: count(Class::Killed),
        masked: count(Class::Masked),
        accepted: count(Class::Accepted),
        survivors: count(Class::Survivor),
        unknown: count(Class::Unknown),
    };
    // An acceptance that names mutants of this run and accepts none of them is outdated (its
    // survivors are killed now, or equivalent): the run says so rather than carry it silently.
    let unneeded = accepts
        .iter()
        .filter(|a| {
            let named = results.iter().filter(|r| a.matches(&r.mutation));
            let mut any = false;
            let mut accepted = false;
            for r in named {
                any = true;
                accepted |= r.class == Class::Accepted;
            }
            any && !accepted
        })
        .map(|a| {
            format!(
                "{}:{}: {} {} `{}`",
                a.at.0,
                a.at.1,
                a.chain,
                a.operator.name(),
                a.rule
            )
        })
        .collect();
    Ok(Report {
        profile: profile.name.clone(),
        pod_ips: pod.ips.clone(),
        counts,
        seconds: start.elapsed().as_secs_f64(),
        original,
        mutants: results,
        unneeded,
    })
}

/// Classifies one mutant into `r` (survivors before acceptance).
#[allow(clippy::too_many_arguments)]
fn classify(
    rs: &Ruleset,
    mutant: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    original: &[crate::results::InvariantResult],
    popts: &prove::Options,
    dopts: &diff::Options,
    r: &mut MutantResult,
) {
    // A family the pod has no address of is not looked at by `diff` or the proofs: its mutants
    // would all look equivalent. Not a pass.
    if !prove::families(pod).contains(&r.mutation.family) {
        r.reason = Some(format!(
            "the pod has no {} address, so its tables are not examined (add a `--pod-ip`)",
            match r.mutation.family {
                sidecar_model::Family::Ipv4 => "IPv4",
                sidecar_model::Family::Ipv6 => "IPv6",
            }
        ));
        return;
    }
    // What the kernel would load: the mutant's print, through the parser's and the kernel's
    // load-time checks.
    let mutant = match parse("mutant", print_ruleset(mutant).as_bytes()) {
        Ok(p) => p.ruleset,
        Err(e) => {
            r.class = Class::Invalid;
            r.reason = Some(e.to_string());
            return;
        }
    };
    if crate::smt::solve::deadline_passed() {
        // Nothing is decided past the deadline: the mutants left are not even encoded (the
        // kernel's checks above need no solver).
        r.reason = Some(crate::smt::solve::DEADLINE_PASSED.into());
        return;
    }
    let d = match diff::first_change(rs, &mutant, pod, profile, dopts) {
        Ok(d) => d,
        Err(e) => {
            r.reason = Some(format!("diff: {e}"));
            return;
        }
    };
    let Some(c) = d.changes.into_iter().next() else {
        let undecided = d.unknown || !d.samples.is_empty();
        r.reason = if undecided && crate::smt::solve::deadline_passed() {
            // Past the deadline every query is undecided: that, not the rules, is the reason.
            Some(format!("diff: {}", crate::smt::solve::DEADLINE_PASSED))
        } else if !d.samples.is_empty() {
            Some("diff: a rule with a random sample (-m statistic) that one packet may pass twice in a hop; one shared draw stands for two, so a change behind the second may not be seen".into())
        } else if d.unknown {
            Some("diff: a query was undecided (timeout?)".into())
        } else {
            r.class = Class::Equivalent;
            None
        };
        return;
    };
    r.change = Some(Change {
        description: c.description,
        effect: c.effect,
        witness: c.witness,
    });
    let invs = match prove::invariants(&mutant, pod, profile, popts) {
        Ok(i) => i,
        Err(e) => {
            r.reason = Some(format!("check: {e}"));
            return;
        }
    };
    for (i, o) in invs.iter().zip(original) {
        if i.status == Status::Violated && o.status != Status::Violated {
            r.killed_by.push(Kill {
                id: i.id,
                witness: i.witness.clone(),
            });
        }
    }
    // An invariant the ruleset already violates kills the mutant too when the mutant breaks
    // it at a connection where the ruleset keeps it (mask.rs).
    if r.killed_by.is_empty() {
        for (i, o) in invs.iter().zip(original) {
            if !(i.status == Status::Violated && o.status == Status::Violated) {
                continue;
            }
            let Some(id) = Id::from_name(i.id) else {
                continue;
            };
            match mask::new_violation(rs, &mutant, pod, profile, id, dopts) {
                Ok(Some(w)) => r.killed_by.push(Kill {
                    id: i.id,
                    witness: Some(w),
                }),
                Ok(None) => {}
                Err(e) => {
                    r.reason = Some(format!("new violation of {}: {e}", i.id));
                    return;
                }
            }
        }
    }
    if !r.killed_by.is_empty() {
        r.class = Class::Killed;
        return;
    }
    let undecided: Vec<&str> = invs
        .iter()
        .filter(|i| i.status == Status::Unknown)
        .map(|i| i.id)
        .collect();
    if undecided.is_empty() {
        // Masked: every change is one an invariant the ruleset violates already reports.
        let violated: Vec<Id> = original
            .iter()
            .filter(|o| o.status == Status::Violated)
            .filter_map(|o| Id::from_name(o.id))
            .collect();
        if !violated.is_empty() {
            let is = |ids: &[Id]| mask::masked(rs, &mutant, pod, profile, ids, dopts);
            match is(&violated) {
                Ok(Some(true)) => {
                    let alone: Vec<&'static str> = violated
                        .iter()
                        .filter(|i| matches!(is(&[**i]), Ok(Some(true))))
                        .map(|i| i.name())
                        .collect();
                    r.masked_by = if alone.is_empty() {
                        violated.iter().map(|i| i.name()).collect()
                    } else {
                        alone
                    };
                    r.class = Class::Masked;
                    return;
                }
                Ok(Some(false)) => {}
                Ok(None) => {
                    r.reason = Some("masking: a query was undecided (timeout?)".into());
                    return;
                }
                Err(e) => {
                    r.reason = Some(format!("masking: {e}"));
                    return;
                }
            }
        }
        r.class = Class::Survivor;
        // Show the class that matters most: the first found may be a loop that stays a loop
        // (a connection addressed to the proxy's own capture port), rarely what the edit is about.
        if let Some(c) = telling_change(rs, &mutant, pod, profile, dopts) {
            r.change = Some(c);
        }
    } else {
        r.reason = Some(format!("check: unknown for {}", undecided.join(", ")));
    }
}

/// Among the first classes of changed connections (at most 8), the first that is not a loop on
/// both sides; `None` when there is none or the search fails (the first class found stays).
fn telling_change(
    rs: &Ruleset,
    mutant: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    dopts: &diff::Options,
) -> Option<Change> {
    use sidecar_model::pod::Outcome;
    let opts = diff::Options {
        max_classes: 8,
        ..dopts.clone()
    };
    let d = diff::changes(rs, mutant, pod, profile, &opts).ok()?;
    d.changes
        .into_iter()
        .find(|c| !(c.old.outcome == Outcome::Loop && c.new.outcome == Outcome::Loop))
        .map(|c| Change {
            description: c.description,
            effect: c.effect,
            witness: c.witness,
        })
}
