//! Where the rulesets to test against are: ours under `corpus/`, and Istio's generated files,
//! read in place from `../shared/corpus/istio` (or `$SIDECAR_SHARED_CORPUS/istio`), never copied.

use std::path::{Path, PathBuf};

/// The form of an Istio corpus file, as INDEX.md names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IstioForm {
    /// iptables-restore input (`restore`).
    Restore,
    /// One `iptables` command per line (`cmd`).
    Commands,
    /// An nft script (`nft`).
    Nft,
}

/// The repository's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Istio's corpus folder, when it is here.
pub fn istio_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SIDECAR_SHARED_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/corpus"))
        .join("istio");
    dir.join("INDEX.md").is_file().then_some(dir)
}

/// The iptables-form files INDEX.md lists (relative paths), with their form.
pub fn istio_iptables_files(dir: &Path) -> Vec<(String, IstioForm)> {
    istio_files(dir)
        .into_iter()
        .filter(|(_, f)| *f != IstioForm::Nft)
        .collect()
}

/// The nft scripts INDEX.md lists (relative paths).
pub fn istio_nft_files(dir: &Path) -> Vec<String> {
    istio_files(dir)
        .into_iter()
        .filter(|(_, f)| *f == IstioForm::Nft)
        .map(|(p, _)| p)
        .collect()
}

/// Every file INDEX.md lists in a form the model reads (`args` lists are not rulesets).
fn istio_files(dir: &Path) -> Vec<(String, IstioForm)> {
    let Ok(index) = std::fs::read_to_string(dir.join("INDEX.md")) else {
        return Vec::new();
    };
    index
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            let form = match cols.get(2) {
                Some(&"restore") => IstioForm::Restore,
                Some(&"cmd") => IstioForm::Commands,
                Some(&"nft") => IstioForm::Nft,
                _ => return None,
            };
            cols.get(1).map(|f| (f.to_string(), form))
        })
        .collect()
}

/// The iptables golden of the configuration an nft golden was generated for: Istio keeps the two
/// backends' test data side by side (`tools/istio-nftables/…` beside `tools/istio-iptables/…`,
/// `cni/pkg/nftables/…` beside `cni/pkg/iptables/…`), one file name per configuration.
pub fn iptables_counterpart(nft_file: &str) -> Option<String> {
    [
        ("tools/istio-nftables/", "tools/istio-iptables/"),
        ("cni/pkg/nftables/", "cni/pkg/iptables/"),
    ]
    .into_iter()
    .find_map(|(n, i)| nft_file.strip_prefix(n).map(|rest| format!("{i}{rest}")))
}

/// `corpus/istio-profiles.toml`, as a table.
pub fn istio_profiles() -> Result<toml::Table, String> {
    let path = workspace().join("corpus/istio-profiles.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The key of a corpus file in `istio-profiles.toml` (its path with any `history/<tag>/` taken
/// off) and its tag.
pub fn istio_key(file: &str) -> (&str, Option<&str>) {
    file.strip_prefix("history/")
        .and_then(|r| r.split_once('/'))
        .map_or((file, None), |(t, k)| (k, Some(t)))
}

/// The entry of `istio-profiles.toml` that describes `file` (`has_entry` says which keys have
/// one): its own key, or for an nft golden without an entry of its own, its iptables
/// counterpart's ([`iptables_counterpart`]; the bool says so). The tag as [`istio_key`] gives it.
pub fn istio_entry(file: &str, has_entry: impl Fn(&str) -> bool) -> (String, Option<&str>, bool) {
    let (key, tag) = istio_key(file);
    match iptables_counterpart(key).filter(|_| !has_entry(key)) {
        Some(c) => (c, tag, true),
        None => (key.to_string(), tag, false),
    }
}

/// The profile values of entry `key` at `tag` (none: the current file), in the order they
/// override each other: the `"*"` entry's, the entry's, the `"*"` entry's for that tag, the
/// entry's for that tag. `None` when there is no such entry.
pub fn istio_profile_table(
    profiles: &toml::Table,
    key: &str,
    tag: Option<&str>,
) -> Option<toml::Table> {
    let e = profiles.get(key)?;
    let layer = |x: Option<&toml::Value>| {
        x.and_then(|v| v.get("profile"))
            .and_then(|p| p.as_table())
            .cloned()
    };
    let version = |x: Option<&toml::Value>| {
        tag.and_then(|t| layer(x.and_then(|v| v.get("history")).and_then(|h| h.get(t))))
    };
    let defaults = profiles.get("*");
    let mut table = toml::Table::new();
    for l in [
        layer(defaults),
        layer(Some(e)),
        version(defaults),
        version(Some(e)),
    ]
    .into_iter()
    .flatten()
    {
        table.extend(l);
    }
    Some(table)
}

/// The pod addresses entry `key` gives (`pod_ips`), none when it gives none.
pub fn istio_pod_ips(profiles: &toml::Table, key: &str) -> Vec<std::net::IpAddr> {
    profiles
        .get(key)
        .and_then(|e| e.get("pod_ips"))
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// One file of Istio's corpus to `check`: the profile and pod it is checked with, and the
/// invariants it must fail (`istio_corpus_check`, `profiles_from_flags`).
#[derive(Debug)]
pub struct Job {
    /// The file, relative to the corpus folder.
    pub file: String,
    /// The profile it is checked with.
    pub profile: sidecar_model::pod::Profile,
    /// The entry's `pod_ips`; the pod is built as `check` builds it (`Pod::for_rulesets`).
    pub pod_ips: Vec<std::net::IpAddr>,
    /// The invariants that must not pass (an unknown one written `ID (unknown)`).
    pub violated: std::collections::BTreeSet<String>,
}

/// A job's file checked: its ruleset, the pod, the report, and the invariants that did not
/// pass (an unknown one written `ID (unknown)`).
#[derive(Debug)]
pub struct JobRun {
    /// The file's ruleset.
    pub ruleset: sidecar_model::Ruleset,
    /// The pod it was checked in.
    pub pod: sidecar_model::pod::Pod,
    /// What `check` found.
    pub report: crate::check::Report,
    /// The invariants that did not pass.
    pub failing: std::collections::BTreeSet<String>,
}

impl Job {
    /// `check` on the file under `dir` with the job's profile and pod, or why it could not be
    /// run (the file does not parse, the proofs failed).
    pub fn run(&self, dir: &Path) -> Result<JobRun, String> {
        use crate::check::{check, Options, Status};
        let bytes = std::fs::read(dir.join(&self.file))
            .map_err(|e| format!("{}: cannot read: {e}", self.file))?;
        let ruleset = sidecar_model::parse(&self.file, &bytes)
            .map_err(|e| format!("{}: does not parse: {e}", self.file))?
            .ruleset;
        let pod = sidecar_model::pod::Pod::for_rulesets(&self.pod_ips, &[&ruleset]);
        let canonical = sidecar_model::print_ruleset(&ruleset);
        let report = check(
            &ruleset,
            &canonical,
            &pod,
            &self.profile,
            &Options::default(),
        )
        .map_err(|e| format!("{}: check failed: {e}", self.file))?;
        let failing = report
            .invariants
            .iter()
            .filter(|i| !i.status.passes())
            .map(|i| {
                if i.status == Status::Unknown {
                    format!("{} (unknown)", i.id)
                } else {
                    i.id.to_string()
                }
            })
            .collect();
        Ok(JobRun {
            ruleset,
            pod,
            report,
            failing,
        })
    }
}

/// `each` on every job, on two threads (the machines CI runs on have two cores), the problems
/// it reports gathered in no particular order.
pub fn run_jobs(jobs: &[Job], each: impl Fn(&Job) -> Vec<String> + Sync) -> Vec<String> {
    let queue = std::sync::Mutex::new(jobs.iter());
    let found = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some(job) = next else {
                    return;
                };
                let problems = each(job);
                if let Ok(mut f) = found.lock() {
                    f.extend(problems);
                }
            });
        }
    });
    found.into_inner().unwrap_or_default()
}
