//! Reading the rules of a live network namespace: RULES spelled `netns:NAME|PATH` or `pid:PID`
//! (and the flags `--netns`/`--pid`, which the CLI turns into those spellings), for every
//! subcommand through [`crate::input::load`].
//!
//! A namespace's rules may sit in three backends: iptables-legacy (x_tables, which only
//! `iptables-legacy-save` and `ip6tables-legacy-save` see), iptables-nft (nf_tables tables that
//! iptables made, which `iptables-nft-save`, `ip6tables-nft-save` and `nft` see) and native
//! nftables (which only `nft` sees). The model reads one form per input, iptables-save text or
//! nft text, so [`read`] lists every backend, then decides:
//!
//! - no table anywhere: refused ([`LiveError::Empty`]); an empty namespace is not an empty
//!   ruleset (nothing was installed, or it was installed elsewhere);
//! - iptables-legacy tables and nf_tables tables both *holding rules* (a rule, or a built-in or
//!   base chain whose policy is not accept): refused, naming both ([`LiveError::Mixed`]). The
//!   kernel runs both, and no dump says which runs first at an equal priority; reading one alone
//!   would silently drop the other's rules;
//! - iptables-legacy holds rules, or only it has tables: `iptables-legacy-save` followed by
//!   `ip6tables-legacy-save`;
//! - else, when `nft` lists a table that is not iptables-nft's (one `iptables-nft-save` or
//!   `ip6tables-nft-save` does not print as its own, chain for chain and rule for rule, or calls
//!   incompatible): `nft list ruleset`, which lists iptables-nft's tables too, in creation order;
//! - else `iptables-nft-save` followed by `ip6tables-nft-save`: iptables' own words for its
//!   rules, the best fidelity.
//!
//! Tables of the side not read hold no rules, so leaving them out changes nothing; the summary
//! ([`Summary`], printed on stderr by the CLI) names them. Only list and save commands run: they
//! change nothing (`iptables-legacy-save` may load a kernel module, which adds no rule). The
//! listings are several commands, not one snapshot: they are all taken again after reading, and
//! when a table, a chain or a chain's number of rules changed in between, the reading is refused
//! ([`LiveError::Changed`]). The namespace is entered with `ip netns exec NAME` for a name (under
//! `/var/run/netns`) and `nsenter --net=PATH` for a path or a process; both need root.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/var/run/netns";

/// The RULES prefix naming a network namespace.
pub const NETNS_PREFIX: &str = "netns:";

/// The RULES prefix naming a process's network namespace.
pub const PID_PREFIX: &str = "pid:";

/// A network namespace to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A name under [`NETNS_DIR`], entered with `ip netns exec`.
    Name(String),
    /// A namespace file, such as `/proc/PID/ns/net`, entered with `nsenter --net`.
    Path(PathBuf),
    /// A process's network namespace (`/proc/PID/ns/net`), entered with `nsenter --net`.
    Pid(u32),
}

impl Target {
    /// The target a RULES argument spells (`netns:NAME|PATH`, `pid:PID`), `None` when it spells
    /// neither (a path or `-`).
    pub fn from_rules_arg(arg: &str) -> Option<Result<Target, LiveError>> {
        if let Some(rest) = arg.strip_prefix(NETNS_PREFIX) {
            Some(Target::netns(rest))
        } else {
            arg.strip_prefix(PID_PREFIX).map(Target::pid)
        }
    }

    /// `--netns`'s value: a path when it holds a `/`, else a name under [`NETNS_DIR`].
    pub fn netns(value: &str) -> Result<Target, LiveError> {
        if value.contains('/') {
            return Ok(Target::Path(PathBuf::from(value)));
        }
        if value.is_empty() || value == "." || value == ".." || value.starts_with('-') {
            return Err(LiveError::Spelling {
                arg: format!("{NETNS_PREFIX}{value}"),
                why: "expected the name of a network namespace (as `ip netns list` shows) or a path such as /proc/PID/ns/net".into(),
            });
        }
        Ok(Target::Name(value.to_string()))
    }

    /// `--pid`'s value: a process id.
    pub fn pid(value: &str) -> Result<Target, LiveError> {
        value
            .parse::<u32>()
            .map(Target::Pid)
            .map_err(|_| LiveError::Spelling {
                arg: format!("{PID_PREFIX}{value}"),
                why: format!("`{value}` is not a process id"),
            })
    }

    /// The RULES spelling of the target (`netns:NAME`, `netns:PATH`, `pid:PID`): the ruleset's
    /// name in reports and errors.
    pub fn label(&self) -> String {
        match self {
            Target::Name(n) => format!("{NETNS_PREFIX}{n}"),
            Target::Path(p) => format!("{NETNS_PREFIX}{}", p.display()),
            Target::Pid(p) => format!("{PID_PREFIX}{p}"),
        }
    }

    /// The namespace file.
    fn file(&self) -> PathBuf {
        match self {
            Target::Name(n) => Path::new(NETNS_DIR).join(n),
            Target::Path(p) => p.clone(),
            Target::Pid(p) => PathBuf::from(format!("/proc/{p}/ns/net")),
        }
    }

    /// The program that enters the namespace.
    fn enter_tool(&self) -> &'static str {
        match self {
            Target::Name(_) => "ip",
            Target::Path(_) | Target::Pid(_) => "nsenter",
        }
    }

    /// `program args…` run inside the namespace.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(self.enter_tool());
        match self {
            Target::Name(n) => {
                c.args(["netns", "exec", n]);
            }
            Target::Path(_) | Target::Pid(_) => {
                let mut net = std::ffi::OsString::from("--net=");
                net.push(self.file());
                c.arg(net).arg("--");
            }
        }
        c.arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }
}

/// Why a namespace's rules could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LiveError {
    /// `netns:`/`pid:` followed by something that names no namespace.
    #[error("`{arg}`: {why}")]
    Spelling {
        /// The argument as given.
        arg: String,
        /// What was expected.
        why: String,
    },
    /// Entering a namespace needs root.
    #[error("{label}: reading a network namespace's rules needs root (to enter it and to list its tables)")]
    NotRoot {
        /// The target's label.
        label: String,
    },
    /// A program the reading needs is not installed.
    #[error("{label}: `{tool}` is not installed; reading a namespace's rules needs {}",
        "`ip` or `nsenter`, iptables' `iptables-legacy-save`, `ip6tables-legacy-save`, `iptables-nft-save`, `ip6tables-nft-save` and nftables' `nft`")]
    ToolMissing {
        /// The target's label.
        label: String,
        /// The missing program.
        tool: String,
    },
    /// The namespace does not exist.
    #[error("{label}: no such network namespace ({why})")]
    NoNamespace {
        /// The target's label.
        label: String,
        /// What is missing.
        why: String,
    },
    /// The namespace cannot be entered (not a network namespace, or the entering tool failed).
    #[error("{label}: cannot enter the network namespace: {stderr}")]
    Enter {
        /// The target's label.
        label: String,
        /// What the entering tool said.
        stderr: String,
    },
    /// A list or save command failed.
    #[error("{label}: `{command}` failed in the namespace: {stderr}")]
    Command {
        /// The target's label.
        label: String,
        /// The command.
        command: String,
        /// What it said.
        stderr: String,
    },
    /// `nft -j list ruleset` printed something that is not nftables JSON.
    #[error("{label}: cannot read what `nft -j list ruleset` printed: {why}")]
    Json {
        /// The target's label.
        label: String,
        /// Why.
        why: String,
    },
    /// No backend holds any table.
    #[error("{label}: no backend holds any table (iptables-legacy, iptables-nft and nftables list none): the namespace has no rules to read, which is not an empty ruleset")]
    Empty {
        /// The target's label.
        label: String,
    },
    /// iptables-legacy and nf_tables both hold rules.
    #[error("{label}: both iptables-legacy and nf_tables hold rules, {legacy} and {nft}; the kernel runs both, and no dump says which runs first at an equal priority, so neither alone is the namespace's ruleset (read them apart: `iptables-legacy-save` and `nft list ruleset` in the namespace)")]
    Mixed {
        /// The target's label.
        label: String,
        /// The legacy tables.
        legacy: String,
        /// The nf_tables tables, by backend.
        nft: String,
    },
    /// The tables changed between the listings.
    #[error("{label}: the rules changed while they were read (the listings before and after differ); read them again once they are settled")]
    Changed {
        /// The target's label.
        label: String,
    },
}

/// The backends a namespace's rules may sit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// x_tables, through `iptables-legacy`.
    IptablesLegacy,
    /// nf_tables tables that `iptables-nft` made.
    IptablesNft,
    /// Native nf_tables tables.
    Nft,
}

impl Backend {
    /// The backend's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::IptablesLegacy => "iptables-legacy",
            Backend::IptablesNft => "iptables-nft",
            Backend::Nft => "nft",
        }
    }
}

/// One table as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSeen {
    /// The family as nft spells it: `ip`, `ip6`, `inet`, … (iptables' tables: `ip` or `ip6`).
    pub family: String,
    /// The table's name.
    pub name: String,
    /// Each chain's name and number of rules, sorted by name.
    pub chains: Vec<(String, usize)>,
    /// Whether a built-in or base chain's policy is not accept.
    pub policy_not_accept: bool,
}

impl TableSeen {
    /// Whether the table does anything: it holds a rule, or a policy that is not accept.
    pub fn holds_rules(&self) -> bool {
        self.policy_not_accept || self.chains.iter().any(|(_, n)| *n > 0)
    }
}

/// Every table of a namespace, by backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// What `iptables-legacy-save` and `ip6tables-legacy-save` list.
    pub legacy: Vec<TableSeen>,
    /// The nf_tables tables iptables-nft's saves print as their own.
    pub iptables_nft: Vec<TableSeen>,
    /// The other nf_tables tables.
    pub nft: Vec<TableSeen>,
}

/// Which listing is read as the namespace's ruleset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `iptables-legacy-save`, then `ip6tables-legacy-save`.
    LegacySave,
    /// `iptables-nft-save`, then `ip6tables-nft-save`.
    NftSave,
    /// `nft list ruleset`.
    NftRuleset,
}

impl Source {
    /// The commands, as messages name them.
    fn commands(self) -> &'static str {
        match self {
            Source::LegacySave => "`iptables-legacy-save` and `ip6tables-legacy-save`",
            Source::NftSave => "`iptables-nft-save` and `ip6tables-nft-save`",
            Source::NftRuleset => "`nft list ruleset`",
        }
    }
}

/// Why the inventory cannot be read as one ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No table anywhere.
    Empty,
    /// Legacy and nf_tables both hold rules.
    Mixed,
}

/// Which listing to read, by the rules of the module's documentation.
pub fn choose(inv: &Inventory) -> Result<Source, Refusal> {
    let nf: Vec<&TableSeen> = inv.iptables_nft.iter().chain(&inv.nft).collect();
    if inv.legacy.is_empty() && nf.is_empty() {
        return Err(Refusal::Empty);
    }
    let legacy_holds = inv.legacy.iter().any(TableSeen::holds_rules);
    let nf_holds = nf.iter().any(|t| t.holds_rules());
    if legacy_holds && nf_holds {
        return Err(Refusal::Mixed);
    }
    if legacy_holds || nf.is_empty() {
        Ok(Source::LegacySave)
    } else if inv.nft.is_empty() {
        Ok(Source::NftSave)
    } else {
        Ok(Source::NftRuleset)
    }
}

/// What a reading found and read: the CLI prints it on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The target's label.
    pub label: String,
    /// The listing read.
    pub source: Source,
    /// Every table found.
    pub inventory: Inventory,
}

impl Summary {
    /// The backends read, and those present but not read (they hold no rules).
    fn split(&self) -> (Vec<Backend>, Vec<Backend>) {
        let read: &[Backend] = match self.source {
            Source::LegacySave => &[Backend::IptablesLegacy],
            Source::NftSave => &[Backend::IptablesNft],
            Source::NftRuleset => &[Backend::IptablesNft, Backend::Nft],
        };
        let all = [Backend::IptablesLegacy, Backend::IptablesNft, Backend::Nft];
        let present: Vec<Backend> = all
            .into_iter()
            .filter(|b| !self.inventory.tables(*b).is_empty())
            .collect();
        present.into_iter().partition(|b| read.contains(b))
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (read, unread) = self.split();
        let words = |bs: &[Backend]| -> String {
            bs.iter()
                .map(|b| self.inventory.backend_words(*b))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "read {}: {} with {}",
            self.label,
            words(&read),
            self.source.commands()
        )?;
        if !unread.is_empty() {
            write!(f, "; not read, holding no rules: {}", words(&unread))?;
        }
        Ok(())
    }
}

impl Inventory {
    /// One backend's tables.
    pub fn tables(&self, b: Backend) -> &[TableSeen] {
        match b {
            Backend::IptablesLegacy => &self.legacy,
            Backend::IptablesNft => &self.iptables_nft,
            Backend::Nft => &self.nft,
        }
    }

    /// `iptables-legacy (ipv4: nat, mangle; ipv6: nat)`, `nft (inet istio-proxy-nat)`.
    pub fn backend_words(&self, b: Backend) -> String {
        let tables = self.tables(b);
        let list = match b {
            Backend::Nft => tables
                .iter()
                .map(|t| format!("{} {}", t.family, t.name))
                .collect::<Vec<_>>()
                .join(", "),
            Backend::IptablesLegacy | Backend::IptablesNft => [("ip", "ipv4"), ("ip6", "ipv6")]
                .iter()
                .filter_map(|(fam, words)| {
                    let names: Vec<&str> = tables
                        .iter()
                        .filter(|t| t.family == *fam)
                        .map(|t| t.name.as_str())
                        .collect();
                    (!names.is_empty()).then(|| format!("{words}: {}", names.join(", ")))
                })
                .collect::<Vec<_>>()
                .join("; "),
        };
        format!("{} ({list})", b.name())
    }

    /// The backends holding rules, as [`LiveError::Mixed`] names them.
    fn holding(&self, bs: &[Backend]) -> String {
        bs.iter()
            .filter(|b| self.tables(**b).iter().any(TableSeen::holds_rules))
            .map(|b| self.backend_words(*b))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A namespace's rules, read.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The text read: iptables-save text (IPv4 then IPv6) or `nft list ruleset`.
    pub text: Vec<u8>,
    /// What was found and read.
    pub summary: Summary,
}

/// The programs a reading runs inside the namespace.
const LIST_TOOLS: [&str; 5] = [
    "iptables-legacy-save",
    "ip6tables-legacy-save",
    "iptables-nft-save",
    "ip6tables-nft-save",
    "nft",
];

/// Reads the rules of `target` (see the module documentation for which listing is read).
pub fn read(target: &Target) -> Result<Reading, LiveError> {
    let label = target.label();
    if !nix::unistd::geteuid().is_root() {
        return Err(LiveError::NotRoot { label });
    }
    for tool in std::iter::once(target.enter_tool()).chain(LIST_TOOLS) {
        if !on_path(tool) {
            return Err(LiveError::ToolMissing {
                label,
                tool: tool.to_string(),
            });
        }
    }
    if let Target::Pid(p) = target {
        if !Path::new(&format!("/proc/{p}")).exists() {
            return Err(LiveError::NoNamespace {
                label,
                why: format!("no process {p}"),
            });
        }
    }
    let file = target.file();
    if !file.exists() {
        return Err(LiveError::NoNamespace {
            label,
            why: format!("`{}` does not exist", file.display()),
        });
    }
    // Entering alone first, so that a namespace that cannot be entered is said to be so.
    run(target, "true", &[]).map_err(|e| match e {
        LiveError::Command { stderr, .. } => LiveError::Enter {
            label: label.clone(),
            stderr,
        },
        e => e,
    })?;
    let before = listing(target)?;
    let source = choose(&before.inventory).map_err(|r| match r {
        Refusal::Empty => LiveError::Empty {
            label: label.clone(),
        },
        Refusal::Mixed => LiveError::Mixed {
            label: label.clone(),
            legacy: before.inventory.holding(&[Backend::IptablesLegacy]),
            nft: before
                .inventory
                .holding(&[Backend::IptablesNft, Backend::Nft]),
        },
    })?;
    let text = match source {
        Source::LegacySave => [before.legacy4.as_slice(), &before.legacy6].concat(),
        Source::NftSave => [before.nft4.as_slice(), &before.nft6].concat(),
        Source::NftRuleset => run(target, "nft", &["list", "ruleset"])?,
    };
    if listing(target)?.inventory != before.inventory {
        return Err(LiveError::Changed { label });
    }
    Ok(Reading {
        text,
        summary: Summary {
            label,
            source,
            inventory: before.inventory,
        },
    })
}

/// Whether `tool` is an executable file on `PATH`.
fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Every listing of a namespace, and the inventory they make.
struct Listing {
    legacy4: Vec<u8>,
    legacy6: Vec<u8>,
    nft4: Vec<u8>,
    nft6: Vec<u8>,
    inventory: Inventory,
}

fn listing(target: &Target) -> Result<Listing, LiveError> {
    let legacy4 = run(target, "iptables-legacy-save", &[])?;
    let legacy6 = run(target, "ip6tables-legacy-save", &[])?;
    let nft4 = run(target, "iptables-nft-save", &[])?;
    let nft6 = run(target, "ip6tables-nft-save", &[])?;
    let json = run(target, "nft", &["-j", "list", "ruleset"])?;
    let json_tables = json_tables(&String::from_utf8_lossy(&json)).map_err(|why| LiveError::Json {
        label: target.label(),
        why,
    })?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let inventory = inventory(
        [text(&legacy4), text(&legacy6)],
        [text(&nft4), text(&nft6)],
        json_tables,
    );
    Ok(Listing {
        legacy4,
        legacy6,
        nft4,
        nft6,
        inventory,
    })
}

/// The inventory of the legacy saves (IPv4, IPv6), iptables-nft's saves (IPv4, IPv6) and the
/// tables `nft -j list ruleset` lists: an nft table is iptables-nft's when its family's
/// iptables-nft save prints a table that [`shows`] it, and does not call it incompatible.
pub fn inventory(legacy: [String; 2], nft_saves: [String; 2], nft: Vec<TableSeen>) -> Inventory {
    let [l4, l6] = legacy;
    let mut inv = Inventory {
        legacy: save_tables(&l4, "ip")
            .0
            .into_iter()
            .chain(save_tables(&l6, "ip6").0)
            .collect(),
        ..Inventory::default()
    };
    let [n4, n6] = nft_saves;
    let (t4, bad4) = save_tables(&n4, "ip");
    let (t6, bad6) = save_tables(&n6, "ip6");
    for t in nft {
        let own = t4.iter().chain(&t6).any(|s| shows(s, &t))
            && !bad4
                .iter()
                .chain(&bad6)
                .any(|(f, n)| *f == t.family && *n == t.name);
        if own {
            inv.iptables_nft.push(t);
        } else {
            inv.nft.push(t);
        }
    }
    inv
}

/// Whether `save`, a table an iptables-nft save printed, shows the nf_tables table `nft` whole:
/// the same family, name and policies, every chain of `nft` with as many rules, and no other
/// chain but empty built-in ones (iptables-nft creates a built-in chain only when a rule or a
/// policy needs it, and its save prints every built-in chain of the table, absent ones as
/// `ACCEPT [0:0]`).
fn shows(save: &TableSeen, nft: &TableSeen) -> bool {
    const BUILT_IN: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
    save.family == nft.family
        && save.name == nft.name
        && save.policy_not_accept == nft.policy_not_accept
        && nft.chains.iter().all(|c| save.chains.contains(c))
        && save
            .chains
            .iter()
            .all(|c| nft.chains.contains(c) || (c.1 == 0 && BUILT_IN.contains(&c.0.as_str())))
}

/// The tables of one family's iptables-save text, and the `(family, name)` of those it calls
/// incompatible (`# Table `nat' is incompatible, use 'nft' tool.`, `… contains incompatible
/// base-chains …`: iptables-nft-save then prints the table without what it cannot show).
pub fn save_tables(text: &str, family: &str) -> (Vec<TableSeen>, Vec<(String, String)>) {
    let mut tables: Vec<TableSeen> = Vec::new();
    let mut bad = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('*') {
            tables.push(TableSeen {
                family: family.to_string(),
                name: name.trim().to_string(),
                chains: Vec::new(),
                policy_not_accept: false,
            });
        } else if let Some(rest) = line.strip_prefix("# Table `") {
            if line.contains("incompatible") {
                if let Some((name, _)) = rest.split_once('\'') {
                    bad.push((family.to_string(), name.to_string()));
                }
            }
        } else if let Some(rest) = line.strip_prefix(':') {
            let mut words = rest.split_whitespace();
            if let (Some(t), Some(chain)) = (tables.last_mut(), words.next()) {
                let policy = words.next().unwrap_or("-");
                t.policy_not_accept |= policy != "-" && policy != "ACCEPT";
                t.chains.push((chain.to_string(), 0));
            }
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let chain = rest.split_whitespace().next().unwrap_or("");
            if let Some(c) = tables
                .last_mut()
                .and_then(|t| t.chains.iter_mut().find(|(n, _)| n == chain))
            {
                c.1 += 1;
            }
        }
    }
    for t in &mut tables {
        t.chains.sort();
    }
    (tables, bad)
}

/// The tables `nft -j list ruleset` lists.
pub fn json_tables(json: &str) -> Result<Vec<TableSeen>, String> {
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let items = doc
        .get("nftables")
        .and_then(serde_json::Value::as_array)
        .ok_or("no `nftables` array")?;
    let mut tables: Vec<TableSeen> = Vec::new();
    let str_of = |o: &serde_json::Value, k: &str| -> String {
        o.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for item in items {
        if let Some(t) = item.get("table") {
            tables.push(TableSeen {
                family: str_of(t, "family"),
                name: str_of(t, "name"),
                chains: Vec::new(),
                policy_not_accept: false,
            });
            continue;
        }
        let (obj, is_rule) = match (item.get("chain"), item.get("rule")) {
            (Some(c), _) => (c, false),
            (None, Some(r)) => (r, true),
            (None, None) => continue,
        };
        let (family, table) = (str_of(obj, "family"), str_of(obj, "table"));
        let chain = if is_rule {
            str_of(obj, "chain")
        } else {
            str_of(obj, "name")
        };
        let Some(t) = tables
            .iter_mut()
            .find(|t| t.family == family && t.name == table)
        else {
            return Err(format!(
                "a chain or rule of table `{family} {table}`, which it does not list"
            ));
        };
        if is_rule {
            match t.chains.iter_mut().find(|(n, _)| *n == chain) {
                Some(c) => c.1 += 1,
                None => t.chains.push((chain, 1)),
            }
        } else {
            if obj.get("hook").is_some() {
                let policy = obj
                    .get("policy")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("accept");
                t.policy_not_accept |= policy != "accept";
            }
            if !t.chains.iter().any(|(n, _)| *n == chain) {
                t.chains.push((chain, 0));
            }
        }
    }
    for t in &mut tables {
        t.chains.sort();
    }
    Ok(tables)
}

/// Runs `program args…` in the namespace; its stdout, or an error with what it said.
fn run(target: &Target, program: &str, args: &[&str]) -> Result<Vec<u8>, LiveError> {
    let command = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let failed = |stderr: String| LiveError::Command {
        label: target.label(),
        command: command.clone(),
        stderr,
    };
    let out = target
        .command(program, args)
        .output()
        .map_err(|e| failed(format!("cannot run `{}`: {e}", target.enter_tool())))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(failed(if said.is_empty() {
            format!("it exited with {}", out.status)
        } else {
            said
        }));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(family: &str, name: &str, chains: &[(&str, usize)], drop: bool) -> TableSeen {
        let mut chains: Vec<(String, usize)> =
            chains.iter().map(|(c, n)| (c.to_string(), *n)).collect();
        chains.sort();
        TableSeen {
            family: family.into(),
            name: name.into(),
            chains,
            policy_not_accept: drop,
        }
    }

    #[test]
    fn spellings() {
        assert_eq!(
            Target::from_rules_arg("netns:pod1").unwrap().unwrap(),
            Target::Name("pod1".into())
        );
        assert_eq!(
            Target::from_rules_arg("netns:/proc/7/ns/net").unwrap().unwrap(),
            Target::Path("/proc/7/ns/net".into())
        );
        assert_eq!(
            Target::from_rules_arg("pid:1234").unwrap().unwrap(),
            Target::Pid(1234)
        );
        assert!(Target::from_rules_arg("rules.txt").is_none());
        assert!(Target::from_rules_arg("./netns:x").is_none());
        let e = Target::from_rules_arg("pid:12a").unwrap().unwrap_err();
        assert_eq!(e.to_string(), "`pid:12a`: `12a` is not a process id");
        assert!(Target::from_rules_arg("netns:").unwrap().is_err());
        assert!(Target::from_rules_arg("netns:..").unwrap().is_err());
        assert_eq!(Target::Pid(9).label(), "pid:9");
        assert_eq!(Target::Name("a".into()).label(), "netns:a");
    }

    const LEGACY: &str = "# Generated by iptables-save v1.8.9 on Tue Dec  1 05:07:18 2026
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:ISTIO_OUTPUT - [0:0]
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_OUTPUT -p tcp -j RETURN
COMMIT
*filter
:INPUT DROP [0:0]
COMMIT
";

    #[test]
    fn save_text_is_counted() {
        let (t, bad) = save_tables(LEGACY, "ip");
        assert!(bad.is_empty());
        assert_eq!(
            t,
            vec![
                table(
                    "ip",
                    "nat",
                    &[("PREROUTING", 0), ("OUTPUT", 1), ("ISTIO_OUTPUT", 2)],
                    false
                ),
                table("ip", "filter", &[("INPUT", 0)], true),
            ]
        );
        assert!(t.iter().all(TableSeen::holds_rules));
        let (_, bad) = save_tables(
            "# Table `nat' contains incompatible base-chains, use 'nft' tool to list them.\n*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
            "ip",
        );
        assert_eq!(bad, vec![("ip".to_string(), "nat".to_string())]);
    }

    #[test]
    fn nft_json_is_counted() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "ip", "name": "nat", "handle": 1}},
            {"chain": {"family": "ip", "table": "nat", "name": "OUTPUT", "handle": 1, "type": "nat", "hook": "output", "prio": -100, "policy": "accept"}},
            {"chain": {"family": "ip", "table": "nat", "name": "X", "handle": 2}},
            {"rule": {"family": "ip", "table": "nat", "chain": "OUTPUT", "handle": 3, "expr": []}},
            {"rule": {"family": "ip", "table": "nat", "chain": "X", "handle": 4, "expr": []}},
            {"rule": {"family": "ip", "table": "nat", "chain": "X", "handle": 5, "expr": []}},
            {"table": {"family": "inet", "name": "f", "handle": 2}},
            {"chain": {"family": "inet", "table": "f", "name": "in", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}]}"#;
        let t = json_tables(json).unwrap();
        assert_eq!(
            t,
            vec![
                table("ip", "nat", &[("OUTPUT", 1), ("X", 2)], false),
                table("inet", "f", &[("in", 0)], true),
            ]
        );
        assert!(json_tables("{}").is_err());
        assert!(json_tables("not json").is_err());
    }

    #[test]
    fn iptables_nft_tables_are_those_its_save_prints_alike() {
        let save = "*nat\n:OUTPUT ACCEPT [0:0]\n:X - [0:0]\n-A OUTPUT -j X\n-A X -j RETURN\n-A X -j RETURN\nCOMMIT\n";
        let own = table("ip", "nat", &[("OUTPUT", 1), ("X", 2)], false);
        let inet = table("inet", "nat", &[("OUTPUT", 1), ("X", 2)], false);
        let inv = inventory(
            [String::new(), String::new()],
            [save.into(), String::new()],
            vec![own.clone(), inet.clone()],
        );
        assert_eq!(inv.iptables_nft, vec![own.clone()]);
        assert_eq!(inv.nft, vec![inet]);
        // One rule more in nft than in the save: not iptables-nft's (the save hides something).
        let more = table("ip", "nat", &[("OUTPUT", 2), ("X", 2)], false);
        let inv = inventory(
            [String::new(), String::new()],
            [save.into(), String::new()],
            vec![more.clone()],
        );
        assert_eq!(inv.nft, vec![more]);
        // A built-in chain iptables-nft never created is in the save, not in nft.
        let fewer = table("ip", "nat", &[("X", 2)], false);
        let save_x = "*nat\n:OUTPUT ACCEPT [0:0]\n:X - [0:0]\n-A X -j RETURN\n-A X -j RETURN\nCOMMIT\n";
        let inv = inventory(
            [String::new(), String::new()],
            [save_x.into(), String::new()],
            vec![fewer.clone()],
        );
        assert_eq!(inv.iptables_nft, vec![fewer]);
        // A user chain nft does not list: not iptables-nft's.
        let no_x = table("ip", "nat", &[("OUTPUT", 0)], false);
        let inv = inventory(
            [String::new(), String::new()],
            [save_x.into(), String::new()],
            vec![no_x.clone()],
        );
        assert_eq!(inv.nft, vec![no_x]);
        // The IPv6 save does not make an `ip` table iptables-nft's.
        let inv = inventory(
            [String::new(), String::new()],
            [String::new(), save.into()],
            vec![own.clone()],
        );
        assert_eq!(inv.nft, vec![own.clone()]);
        // Called incompatible: not iptables-nft's.
        let bad = format!("# Table `nat' is incompatible, use 'nft' tool.\n{save}");
        let inv = inventory(
            [String::new(), String::new()],
            [bad, String::new()],
            vec![own.clone()],
        );
        assert_eq!(inv.nft, vec![own]);
    }

    #[test]
    fn the_choice() {
        let rules = table("ip", "nat", &[("OUTPUT", 1)], false);
        let empty = table("ip", "filter", &[("INPUT", 0)], false);
        let dropping = table("ip", "filter", &[("INPUT", 0)], true);
        let inv = |legacy: &[&TableSeen], ipt: &[&TableSeen], nft: &[&TableSeen]| Inventory {
            legacy: legacy.iter().map(|t| (*t).clone()).collect(),
            iptables_nft: ipt.iter().map(|t| (*t).clone()).collect(),
            nft: nft.iter().map(|t| (*t).clone()).collect(),
        };
        assert_eq!(choose(&inv(&[], &[], &[])), Err(Refusal::Empty));
        assert_eq!(
            choose(&inv(&[&rules], &[&rules], &[])),
            Err(Refusal::Mixed)
        );
        // A policy that drops is something a table does.
        assert_eq!(
            choose(&inv(&[&rules], &[], &[&dropping])),
            Err(Refusal::Mixed)
        );
        assert_eq!(choose(&inv(&[&rules], &[], &[])), Ok(Source::LegacySave));
        assert_eq!(
            choose(&inv(&[&rules], &[&empty], &[&empty])),
            Ok(Source::LegacySave)
        );
        assert_eq!(choose(&inv(&[&empty], &[], &[])), Ok(Source::LegacySave));
        assert_eq!(choose(&inv(&[&empty], &[&rules], &[])), Ok(Source::NftSave));
        assert_eq!(choose(&inv(&[], &[&rules], &[])), Ok(Source::NftSave));
        assert_eq!(
            choose(&inv(&[], &[&rules], &[&empty])),
            Ok(Source::NftRuleset)
        );
        assert_eq!(choose(&inv(&[], &[], &[&rules])), Ok(Source::NftRuleset));
    }

    #[test]
    fn summary_names_what_was_read_and_what_was_not() {
        let s = Summary {
            label: "netns:pod".into(),
            source: Source::LegacySave,
            inventory: Inventory {
                legacy: vec![
                    table("ip", "nat", &[("OUTPUT", 1)], false),
                    table("ip", "mangle", &[], false),
                    table("ip6", "nat", &[], false),
                ],
                iptables_nft: vec![table("ip", "filter", &[], false)],
                nft: vec![],
            },
        };
        assert_eq!(
            s.to_string(),
            "read netns:pod: iptables-legacy (ipv4: nat, mangle; ipv6: nat) with `iptables-legacy-save` and `ip6tables-legacy-save`; not read, holding no rules: iptables-nft (ipv4: filter)"
        );
        let s = Summary {
            label: "pid:7".into(),
            source: Source::NftRuleset,
            inventory: Inventory {
                legacy: vec![],
                iptables_nft: vec![table("ip", "nat", &[], false)],
                nft: vec![table("inet", "istio-proxy-nat", &[], false)],
            },
        };
        assert_eq!(
            s.to_string(),
            "read pid:7: iptables-nft (ipv4: nat), nft (inet istio-proxy-nat) with `nft list ruleset`"
        );
    }
}
