//! `check` on every iptables-form file of Istio's corpus with the profile its configuration
//! implies (`corpus/istio-profiles.toml`, derived from the flags INDEX.md gives), asserting
//! exactly the invariants each is expected to violate: no unknowns, no surprise. Every file
//! INDEX.md lists in restore or command form must have an entry, so a new configuration cannot
//! slip through. The files are read in place from `../shared/corpus/istio` (or
//! `$SIDECAR_SHARED_CORPUS/istio`); without them the test prints a line and passes.
//!
//! `ISTIO_CORPUS_REPORT=1` prints every file's result, expected or not.

#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use sidecar_model::pod::Profile;
use sidecar_verify::check::Status;
use sidecar_verify::corpus::{
    istio_dir, istio_entry, istio_iptables_files, istio_nft_files, istio_profile_table,
    istio_profiles, run_jobs, workspace, Job, JobRun,
};
use sidecar_verify::report::text::check as text;

/// One configuration: the profile its flags imply and what `check` must find.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// What the configuration is (INDEX.md's words, and the flags that matter).
    #[allow(dead_code, reason = "documentation for the reader of the TOML")]
    config: String,
    /// Not checked: why the model cannot express it yet.
    #[serde(default)]
    skip: Option<String>,
    /// Exactly these invariants are violated; every other one holds.
    #[serde(default)]
    violated: Vec<String>,
    /// Per violated invariant: why (a real property of Istio's rules, or a model gap).
    #[serde(default)]
    why: BTreeMap<String, String>,
    /// The pod's addresses (default: 10.1.0.5 and fd00::5 for each family the file holds tables
    /// of, as `check` without --pod-ip).
    #[serde(default)]
    pod_ips: Vec<IpAddr>,
    /// Overrides of the istio profile (over the `"*"` entry's; read by `istio_profile_table`).
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "read through sidecar_verify::corpus::istio_profile_table"
    )]
    profile: Option<toml::Table>,
    /// Per history tag (`1.12.0`, …): a different expectation for that version's file.
    #[serde(default)]
    history: BTreeMap<String, Version>,
    /// Survivors `mutate` accepts on this file (scripts/mutate-corpus; not read here).
    #[serde(default)]
    #[allow(dead_code, reason = "read by scripts/mutate-corpus")]
    mutate_accept: Vec<toml::Value>,
    /// The generator's flags, annotations and installer (read by tests/profiles_from_flags.rs).
    #[serde(default)]
    #[allow(dead_code, reason = "read by tests/profiles_from_flags.rs")]
    istio_args: Option<String>,
    #[serde(default)]
    #[allow(dead_code, reason = "read by tests/profiles_from_flags.rs")]
    annotations: Vec<String>,
    #[serde(default)]
    #[allow(dead_code, reason = "read by tests/profiles_from_flags.rs")]
    istio_cni: bool,
    /// The nft golden of the same configuration ([`iptables_counterpart`]), where its
    /// expectation is not this file's: the two backends behave differently there.
    #[serde(default)]
    nft: Option<Version>,
}

/// A version whose file behaves differently from the current one.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Version {
    #[serde(default)]
    skip: Option<String>,
    violated: Option<Vec<String>>,
    #[serde(default)]
    why: BTreeMap<String, String>,
    /// Profile values of this version (over the entry's; read by `istio_profile_table`).
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "read through sidecar_verify::corpus::istio_profile_table"
    )]
    profile: Option<toml::Table>,
    /// Survivors `mutate` accepts on this version's file instead of the entry's.
    #[serde(default)]
    #[allow(dead_code, reason = "read by scripts/mutate-corpus")]
    mutate_accept: Option<Vec<toml::Value>>,
}

fn profiles() -> BTreeMap<String, Entry> {
    let path = workspace().join("corpus/istio-profiles.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_istio_configuration_meets_its_expected_invariants() {
    let Some(dir) = istio_dir() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let mut entries = profiles();
    let raw = istio_profiles().unwrap();
    // Values every entry shares (per version too): not a file.
    entries.remove("*");
    let files = istio_iptables_files(&dir);
    assert!(files.len() >= 100, "INDEX.md lists {} files", files.len());

    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let mut used_tags = BTreeSet::new();
    let mut jobs = Vec::new();
    let mut skipped = 0;
    // An nft golden without an entry of its own is checked with its iptables counterpart's
    // profile and pod, and its expectation unless the entry's `nft` gives another.
    let nft_files = istio_nft_files(&dir);
    assert_eq!(nft_files.len(), 42, "INDEX.md lists 42 nft goldens");
    let all: Vec<String> = files
        .iter()
        .map(|(f, _)| f.clone())
        .chain(nft_files)
        .collect();
    for file in &all {
        let (k, tag, counterpart_of) = istio_entry(file, |k| entries.contains_key(k));
        let tag = tag.map(str::to_string);
        let Some(e) = entries.get(&k) else {
            problems.push(format!(
                "{file}: no entry `{k}` in corpus/istio-profiles.toml"
            ));
            continue;
        };
        used.insert(k.clone());
        if let Some(t) = &tag {
            used_tags.insert((k.clone(), t.clone()));
        }
        let v = if counterpart_of {
            e.nft.as_ref()
        } else {
            tag.as_ref().and_then(|t| e.history.get(t))
        };
        let skip = v.map_or(e.skip.as_ref(), |v| v.skip.as_ref().or(e.skip.as_ref()));
        if skip.is_some() {
            skipped += 1;
            continue;
        }
        let (violated, why) = match v.and_then(|v| v.violated.clone()) {
            Some(vv) => (vv, &v.unwrap().why),
            None => (e.violated.clone(), &e.why),
        };
        let violated: BTreeSet<String> = violated.into_iter().collect();
        let explained: BTreeSet<String> = why.keys().cloned().collect();
        if violated != explained {
            problems.push(format!(
                "{file}: every violated invariant needs a `why` and only those: violated {violated:?}, why {explained:?}"
            ));
        }
        let table = istio_profile_table(&raw, &k, tag.as_deref()).unwrap();
        let profile = Profile::from_toml(&toml::to_string(&table).unwrap())
            .unwrap_or_else(|err| panic!("{k}: profile: {err}"));
        jobs.push(Job {
            file: file.clone(),
            profile,
            pod_ips: e.pod_ips.clone(),
            violated,
        });
    }
    for (k, e) in &entries {
        if !used.contains(k) {
            problems.push(format!("entry `{k}` matches no file INDEX.md lists"));
        }
        for t in e.history.keys() {
            if !used_tags.contains(&(k.clone(), t.clone())) {
                problems.push(format!(
                    "entry `{k}`: no history/{t}/ file for `history.{t}`"
                ));
            }
        }
    }

    let started = std::time::Instant::now();
    let verbose = std::env::var_os("ISTIO_CORPUS_REPORT").is_some();
    let found = run_jobs(&jobs, |job| check_one(&dir, job, verbose));
    problems.extend(found);
    println!(
        "istio corpus: {} files checked with their profiles, {skipped} skipped, in {:.1} s",
        jobs.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// `check` on one file with its profile; what differs from its expectation.
fn check_one(dir: &Path, job: &Job, verbose: bool) -> Vec<String> {
    let JobRun {
        ruleset: rs,
        pod,
        report,
        failing: got,
    } = match job.run(dir) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    let path = Path::new("../shared/corpus/istio").join(&job.file);
    let report_text = text(&report, &rs, &path.display().to_string(), &pod);
    let unwitnessed: Vec<&str> = report
        .invariants
        .iter()
        .filter(|i| i.status == Status::Violated && (i.witness.is_none() || i.journey.is_none()))
        .map(|i| i.id)
        .collect();
    if !unwitnessed.is_empty() {
        problems.push(format!(
            "{}: violated without a witness and its journey: {unwitnessed:?}",
            job.file
        ));
    }
    if got != job.violated {
        problems.push(format!(
            "{}: expected violated {:?}, got {got:?}\n{report_text}",
            job.file, job.violated
        ));
    } else if verbose {
        let vacuous: Vec<&str> = report
            .invariants
            .iter()
            .filter(|i| i.status == Status::Vacuous)
            .map(|i| i.id)
            .collect();
        println!(
            "{}: as expected, violated {got:?}, vacuous {vacuous:?}",
            job.file
        );
    }
    problems
}
