//! Every configuration of Istio's corpus from its generator's own flags: the profile
//! `model::flags::istio` builds from an entry's `istio_args`, `annotations` and `istio_cni`
//! (`corpus/istio-profiles.toml`) must equal the entry's hand-written profile in every value
//! the flags determine ([`DETERMINES`]; lists compared as sets, but `nameservers`, whose order
//! pairs the families), and `check` with it must find on every file of the configuration
//! (current, history, nft counterparts) exactly the invariants the entry expects violated, as
//! `istio_corpus_check` asserts for the hand-written profile. The profile from flags is built
//! on the entry's values *without* the ones the flags determine, so that nothing of the
//! hand-written capture configuration leaks into it.
//!
//! The first two tests read the TOML alone; the third reads Istio's files in place from
//! `../shared/corpus/istio` (or `$SIDECAR_SHARED_CORPUS/istio`) and, without them, prints a line
//! and passes.

#![cfg(test)]

use std::collections::BTreeSet;
use std::path::Path;

use sidecar_model::flags::annotation;
use sidecar_model::flags::istio::{Installer, IstioFlags, DETERMINES};
use sidecar_model::pod::Profile;
use sidecar_verify::corpus::{
    istio_dir, istio_entry, istio_iptables_files, istio_nft_files, istio_pod_ips,
    istio_profile_table, istio_profiles, run_jobs, Job,
};

/// Entries with no generator flags, by key or key prefix, and why.
const NO_FLAGS: &[(&str, &str)] = &[
    (
        "cni/pkg/iptables/testdata/",
        "ambient's in-pod rules: the istio-cni node agent writes them from its own configuration \
         (cni/pkg/iptables: ztunnel's mark 0x539, the probe addresses, the pod's DNS and ingress \
         settings), without running istio-iptables, so no istio-iptables flag set produced them; \
         their profile is `base = \"ambient\"` with the entry's values",
    ),
    (
        "cni/pkg/plugin/testdata/status-ports.txt.golden",
        "an orphan (INDEX.md: no test has generated it since ~2021), so no configuration of \
         Istio's says which flags or annotations produced it",
    ),
];

/// Why entry `key` has no flags, when it is one of [`NO_FLAGS`].
fn no_flags(key: &str) -> Option<&'static str> {
    NO_FLAGS
        .iter()
        .find(|(k, _)| key == *k || (k.ends_with('/') && key.starts_with(k)))
        .map(|(_, why)| *why)
}

/// The flags entry `e` gives, if any.
fn flags_of(e: &toml::Value) -> Result<Option<IstioFlags>, String> {
    let args = e.get("istio_args").and_then(|v| v.as_str());
    let cni = e
        .get("istio_cni")
        .and_then(toml::Value::as_bool)
        .unwrap_or(false);
    let annotations = e
        .get("annotations")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|s| annotation(s.as_str().unwrap_or_default()))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|x| x.to_string())?;
    if args.is_none() && annotations.is_none() && !cni {
        return Ok(None);
    }
    let annotations = annotations.unwrap_or_default();
    let installer = match (cni, annotations.is_empty()) {
        (true, _) => Installer::Cni,
        (false, false) => Installer::Init,
        (false, true) => Installer::Flags,
    };
    IstioFlags::read(args.unwrap_or(""), &annotations, installer)
        .map(Some)
        .map_err(|x| x.to_string())
}

/// The hand-written profile of entry `key` at `tag`.
fn hand_profile(raw: &toml::Table, key: &str, tag: Option<&str>) -> Profile {
    let table = istio_profile_table(raw, key, tag).unwrap();
    Profile::from_toml(&toml::to_string(&table).unwrap())
        .unwrap_or_else(|e| panic!("{key}: profile: {e}"))
}

/// The profile from `flags`, on entry `key`'s values at `tag` less the ones flags determine.
fn flags_profile(
    raw: &toml::Table,
    key: &str,
    tag: Option<&str>,
    flags: &IstioFlags,
) -> Result<Profile, String> {
    let mut table = istio_profile_table(raw, key, tag).unwrap();
    table.retain(|k, _| !DETERMINES.contains(&k));
    let base = Profile::from_toml(&toml::to_string(&table).unwrap())
        .map_err(|e| format!("{key}: profile without the flags' values: {e}"))?;
    flags
        .profile(base)
        .map_err(|e| format!("{key}: flags: {e}"))
}

/// Where two profiles differ: `key: hand-written … / from flags …`, lists as sets except
/// `nameservers`.
fn differences(hand: &Profile, from_flags: &Profile) -> Vec<String> {
    let norm = |k: &str, v: Option<&toml::Value>| -> Option<toml::Value> {
        match v {
            Some(toml::Value::Array(a)) if k != "nameservers" => {
                let mut a = a.clone();
                a.sort_by_key(|x| x.to_string());
                a.dedup();
                Some(toml::Value::Array(a))
            }
            other => other.cloned(),
        }
    };
    let a = toml::Table::try_from(hand).unwrap();
    let b = toml::Table::try_from(from_flags).unwrap();
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (norm(k, a.get(k)), norm(k, b.get(k)));
            (x != y).then(|| {
                let show =
                    |v: Option<toml::Value>| v.map_or("(none)".to_string(), |v| v.to_string());
                format!("{k}: hand-written {} / from flags {}", show(x), show(y))
            })
        })
        .collect()
}

/// The entries (not `"*"`), by key.
fn entries(raw: &toml::Table) -> impl Iterator<Item = (&String, &toml::Value)> {
    raw.iter().filter(|(k, _)| k.as_str() != "*")
}

#[test]
fn every_entry_has_its_flags_or_says_why_not() {
    let raw = istio_profiles().unwrap();
    let mut problems = Vec::new();
    let mut with = 0;
    for (key, e) in entries(&raw) {
        match (flags_of(e), no_flags(key)) {
            (Err(err), _) => problems.push(format!("{key}: {err}")),
            (Ok(Some(_)), Some(_)) => {
                problems.push(format!("{key}: has flags but NO_FLAGS says it has none"))
            }
            (Ok(None), None) => problems.push(format!(
                "{key}: no `istio_args`, `annotations` or `istio_cni`, and no reason in NO_FLAGS"
            )),
            (Ok(Some(_)), None) => with += 1,
            (Ok(None), Some(_)) => {}
        }
    }
    // A NO_FLAGS key that matches no entry is stale.
    for (k, _) in NO_FLAGS {
        if !entries(&raw).any(|(key, _)| no_flags(key).is_some() && key.starts_with(k)) {
            problems.push(format!("NO_FLAGS `{k}` matches no entry"));
        }
    }
    println!("{with} entries have their generator's flags");
    assert!(with >= 35, "only {with} entries have flags");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn profiles_from_flags_equal_the_hand_written_ones() {
    let raw = istio_profiles().unwrap();
    // Every version an entry's profile may differ at: its own and the "*" entry's history tags.
    let star_tags: Vec<String> = raw
        .get("*")
        .and_then(|s| s.get("history"))
        .and_then(|h| h.as_table())
        .map(|h| h.keys().cloned().collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    let mut compared = 0;
    for (key, e) in entries(&raw) {
        let Ok(Some(flags)) = flags_of(e) else {
            continue;
        };
        let own_tags = e
            .get("history")
            .and_then(|h| h.as_table())
            .map(|h| h.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        let tags: BTreeSet<Option<&str>> = std::iter::once(None)
            .chain(star_tags.iter().chain(&own_tags).map(|t| Some(t.as_str())))
            .collect();
        for tag in tags {
            compared += 1;
            let at = tag.map_or(String::new(), |t| format!(" (history {t})"));
            match flags_profile(&raw, key, tag, &flags) {
                Err(err) => problems.push(err),
                Ok(p) => {
                    let d = differences(&hand_profile(&raw, key, tag), &p);
                    if !d.is_empty() {
                        problems.push(format!("{key}{at}:\n  {}", d.join("\n  ")));
                    }
                }
            }
        }
    }
    println!("{compared} profiles from flags compared with the hand-written ones");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What `istio_corpus_check` expects of `file` (entry `key`, version `tag`, or the nft
/// counterpart of the entry's iptables file): none when it is skipped.
fn expected(
    raw: &toml::Table,
    key: &str,
    tag: Option<&str>,
    counterpart: bool,
) -> Option<BTreeSet<String>> {
    let e = raw.get(key)?;
    let v = if counterpart {
        e.get("nft")
    } else {
        tag.and_then(|t| e.get("history")?.get(t))
    };
    if v.and_then(|v| v.get("skip"))
        .or_else(|| e.get("skip"))
        .is_some()
    {
        return None;
    }
    let violated = v
        .and_then(|v| v.get("violated"))
        .or_else(|| e.get("violated"));
    Some(
        violated
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

#[test]
fn check_with_the_profile_from_flags_finds_the_expected_violations() {
    let Some(dir) = istio_dir() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let raw = istio_profiles().unwrap();
    let files: Vec<String> = istio_iptables_files(&dir)
        .into_iter()
        .map(|(f, _)| f)
        .chain(istio_nft_files(&dir))
        .collect();
    let mut jobs = Vec::new();
    let mut problems = Vec::new();
    let (mut no_flags_files, mut skipped) = (0, 0);
    for file in &files {
        let (key, tag, counterpart) = istio_entry(file, |k| raw.contains_key(k));
        let Some(e) = raw.get(&key) else {
            problems.push(format!("{file}: no entry `{key}`"));
            continue;
        };
        let flags = match flags_of(e) {
            Ok(Some(f)) => f,
            Ok(None) => {
                no_flags_files += 1;
                continue;
            }
            Err(err) => {
                problems.push(format!("{key}: {err}"));
                continue;
            }
        };
        let Some(violated) = expected(&raw, &key, tag, counterpart) else {
            skipped += 1;
            continue;
        };
        match flags_profile(&raw, &key, tag, &flags) {
            Ok(profile) => jobs.push(Job {
                file: file.clone(),
                profile,
                pod_ips: istio_pod_ips(&raw, &key),
                violated,
            }),
            Err(err) => problems.push(err),
        }
    }
    assert!(jobs.len() >= 100, "only {} files have flags", jobs.len());
    let started = std::time::Instant::now();
    let found = run_jobs(&jobs, |job| check_one(&dir, job).into_iter().collect());
    problems.extend(found);
    println!(
        "istio corpus from flags: {} files checked with the profile of their flags, {no_flags_files} without flags, {skipped} skipped, in {:.1} s",
        jobs.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// `check` on one file with its profile from flags; what differs from the expectation.
fn check_one(dir: &Path, job: &Job) -> Option<String> {
    let got = match job.run(dir) {
        Ok(r) => r.failing,
        Err(e) => return Some(e),
    };
    (got != job.violated).then(|| {
        format!(
            "{}: with the profile from flags, expected violated {:?}, got {got:?}",
            job.file, job.violated
        )
    })
}
