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
