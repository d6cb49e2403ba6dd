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
//! `/var/run/netns`) and `nsenter --net=PATH` for a path or a process; both need root. The
//! measurements behind these rules are in docs/live-namespaces.md.
//!
//! # Example
//!
//! ```no_run
//! use sidecar_verify::live::{read, Target};
//!
//! let reading = read(&Target::netns("pod1")?)?;
//! eprintln!("{}", reading.summary); // read netns:pod1: iptables-nft (ipv4: nat) with …
//! let parsed = sidecar_model::parse(&reading.summary.label, &reading.text)?;
//! println!("{} IPv4 tables", parsed.ruleset.ipv4.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod inventory;

pub use inventory::{inventory, json_tables, save_tables, Backend, Inventory, TableSeen};

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
        if !crate::netns::on_path(tool) {
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
    let json_tables =
        json_tables(&String::from_utf8_lossy(&json)).map_err(|why| LiveError::Json {
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
mod tests;
