//! `check`: every invariant of the catalog proved over all connections (or refuted with a
//! concrete one, replayed through the evaluator), and every rule's reachability, as one report
//! about one ruleset. The proofs are [`crate::prove`]'s; the report is
//! [`crate::results::check::Report`].

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::Ruleset;

use crate::prove;

pub use crate::prove::{Options, ProveError};
// What `check` returns, where its callers look for it (the model itself is in `results`).
pub use crate::results::check::{Report, RuleAt, RuleAtTable, RuleResult, RuleStatus, RulesetInfo};
pub use crate::results::{replay_args, replay_command, InvariantResult, Status, Witness};

/// Checks `rs` in `pod` with `profile`: every invariant, every rule. `canonical` is the
/// ruleset's canonical print, whose SHA-256 the report names it by.
///
/// # Example
/// ```
/// use sidecar_model::pod::{Pod, Profile};
/// use sidecar_model::{parse, print_ruleset, DEFAULT_RULESET};
/// use sidecar_verify::check::{check, Options};
///
/// let rs = parse("classic", DEFAULT_RULESET.as_bytes()).unwrap().ruleset;
/// let report = check(&rs, &print_ruleset(&rs), &Pod::default(), &Profile::istio(), &Options::default()).unwrap();
/// // Every invariant but identity-symmetry holds: the classic rules treat a proxy known by gid
/// // 1337 alone unlike one known by uid 1337 (their gid rules come after the uid rules).
/// let violated: Vec<&str> = report.invariants.iter().filter(|i| i.witness.is_some()).map(|i| i.id).collect();
/// assert_eq!(violated, ["identity-symmetry"]);
/// ```
pub fn check(
    rs: &Ruleset,
    canonical: &str,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
) -> Result<Report, ProveError> {
    let proofs = prove::ruleset(rs, pod, profile, opts)?;
    Ok(Report {
        ruleset: RulesetInfo {
            sha256: sha256_hex(canonical),
        },
        profile: profile.name.clone(),
        pod_ips: pod.ips.clone(),
        routing: opts.routing,
        invariants: proofs.invariants,
        rules: proofs.rules,
        undecided: proofs.undecided,
        warnings: warnings(rs),
    })
}

/// The ruleset's warnings: each place where several tables capture connections, as when two
/// backends (iptables-nft and native nft) or two generations of a mesh's tables both hold
/// capture rules. The kernel runs them all, the newest first; the verdicts above take that
/// order to be the input's (the order `nft list ruleset` lists tables in).
pub fn warnings(rs: &Ruleset) -> Vec<String> {
    rs.capture_in_several_tables()
        .into_iter()
        .map(|(family, kind, tables)| {
            let fam = if family == sidecar_model::Family::Ipv6 {
                "IPv6"
            } else {
                "IPv4"
            };
            let list: Vec<String> = tables
                .iter()
                .map(|t| {
                    let backend = if t.is_iptables_nft() {
                        "iptables-nft"
                    } else {
                        "nft"
                    };
                    format!("`{}` ({backend})", t.display_name())
                })
                .collect();
            format!(
                "{} tables capture {fam} connections where iptables' {kind} table runs: {} (oldest first); the kernel runs the newest first, and a connection one of them captures may never reach the others",
                tables.len(),
                list.join(", ")
            )
        })
        .collect()
}

/// Why each invariant of `report` (as [`check`] made it for `rs`) that holds holds: fills in
/// its support, the rules its proof rests on ([`prove::support`]). Asked for with `check --why`:
/// it runs after the proofs, on terms of its own, so the rest of the report is unchanged, and
/// it costs several times the proofs themselves (see docs/proofs.md).
pub fn explain(
    rs: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
    report: &mut Report,
) -> Result<(), ProveError> {
    prove::support::supports(rs, pod, profile, opts, &mut report.invariants)
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(text.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}
