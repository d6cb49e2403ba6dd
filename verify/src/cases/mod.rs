//! Hop cases as data: `corpus/cases/<topic>.toml`, each case a ruleset, a connection and what
//! its first packet's hop must do (the rules hit, in order, and where it is delivered), with
//! where that expectation comes from. One loader ([`load_all`]) and three runners ([`run`]):
//! the concrete evaluator, the SMT hop encoding with the packet fixed, and the kernel oracle.
//! `corpus/cases/README.md` describes the format.
//!
//! # Example
//!
//! ```no_run
//! use sidecar_verify::cases::{load_all, run::{run_all, Evaluator}};
//!
//! let cases = load_all()?;
//! let summary = run_all(&mut Evaluator, &cases);
//! assert!(summary.failures.is_empty(), "{}", summary.failures.join("\n"));
//! # Ok::<(), sidecar_verify::cases::CaseError>(())
//! ```

pub mod run;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sidecar_model::eval::IfName;
use sidecar_model::pod::{Connection, Delivery, Pod, Profile, RuleRef};
use sidecar_model::{Hook, Ruleset, TableKind};

use crate::kernel::{OracleError, POD_IPS};

/// An engine that runs hop cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The concrete evaluator ([`sidecar_model::pod::Simulator::hop`]).
    Evaluator,
    /// The SMT hop encoding with the packet fixed ([`crate::smt::agree::fixed_hop`]).
    Smt,
    /// The kernel oracle ([`crate::kernel`]).
    Kernel,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Evaluator => "evaluator",
            Engine::Smt => "smt",
            Engine::Kernel => "kernel",
        })
    }
}

/// Where a case's ruleset is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `corpus:PATH`: a file under `corpus/`.
    Corpus(String),
    /// `istio:PATH`: a file of Istio's corpus (`../shared/corpus/istio`).
    Istio(String),
    /// The text itself: a case's `rules = """…"""`, or one of its file's `[rulesets]` named.
    Inline(String),
}

impl Source {
    /// `corpus:PATH`, `istio:PATH`, or the name of one of the file's `[rulesets]`.
    fn parse(spec: &str, named: &BTreeMap<String, String>) -> Result<Source, String> {
        if let Some(p) = spec.strip_prefix("corpus:") {
            Ok(Source::Corpus(p.to_string()))
        } else if let Some(p) = spec.strip_prefix("istio:") {
            Ok(Source::Istio(p.to_string()))
        } else if let Some(text) = named.get(spec) {
            Ok(Source::Inline(text.clone()))
        } else {
            Err(format!(
                "ruleset `{spec}` is not `corpus:PATH`, `istio:PATH` or one of the file's `[rulesets]`"
            ))
        }
    }

    /// The ruleset, parsed; `None` when it is in Istio's corpus and that is not here.
    pub fn load(&self) -> Result<Option<Ruleset>, CaseError> {
        let (name, text) = match self {
            Source::Inline(text) => ("inline".to_string(), text.as_bytes().to_vec()),
            Source::Corpus(p) => {
                let path = crate::corpus::workspace().join("corpus").join(p);
                (p.clone(), read(&path)?)
            }
            Source::Istio(p) => {
                let Some(dir) = crate::corpus::istio_dir() else {
                    return Ok(None);
                };
                (p.clone(), read(&dir.join(p))?)
            }
        };
        sidecar_model::parse(&name, &text)
            .map(|p| Some(p.ruleset))
            .map_err(|e| CaseError::Ruleset {
                ruleset: name,
                message: e.to_string(),
            })
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Corpus(p) => write!(f, "corpus:{p}"),
            Source::Istio(p) => write!(f, "istio:{p}"),
            Source::Inline(_) => f.write_str("(inline)"),
        }
    }
}

/// What a case's hop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The rules its first packet hits, in order, over every hook it crosses.
    pub hits: Vec<RuleRef>,
    /// Where it arrives (a proxy listener is a port of the profile's `proxy_ports`).
    pub delivery: Delivery,
    /// The destination the receiving socket sees as original (SO_ORIGINAL_DST): given for
    /// every TCP hop delivered in the pod, and may be for a UDP one.
    pub original_dst: Option<SocketAddr>,
}

/// One hop case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Its file under `corpus/cases/` (the topic).
    pub file: String,
    /// Its name, unique over all files.
    pub name: String,
    /// The ruleset.
    pub ruleset: Source,
    /// Kernel only: a ruleset loaded and exercised first, whose leftovers must not matter.
    pub after: Option<Source>,
    /// The mesh profile (istio unless given).
    pub profile: Profile,
    /// The pod (the kernel oracle's 10.1.0.5 and fd00::5 unless given).
    pub pod: Pod,
    /// The connection whose first hop is followed.
    pub connection: Connection,
    /// What the hop must do.
    pub expected: Expected,
    /// Where the expectation comes from (never the evaluator's output alone).
    pub expected_from: String,
    /// What the case is about.
    pub why: Option<String>,
    /// The engines that cannot run it, each with the reason.
    pub skip: BTreeMap<Engine, String>,
    /// Kernel only: how many times in a row the flow runs.
    pub repeat: usize,
}

/// A case file or case that cannot be used, or an engine that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A case file is not valid TOML for cases.
    #[error("{file}: {message}")]
    File {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// A case says something invalid.
    #[error("{file}: case `{case}`: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The case.
        case: String,
        /// Why.
        message: String,
    },
    /// A case's ruleset does not parse.
    #[error("ruleset `{ruleset}`: {message}")]
    Ruleset {
        /// The ruleset.
        ruleset: String,
        /// The parse error.
        message: String,
    },
    /// The SMT encoding failed.
    #[error("the SMT encoding: {0}")]
    Smt(String),
    /// The kernel oracle cannot run on this machine.
    #[error("the kernel oracle cannot run here: {0}")]
    Unavailable(String),
    /// A case the kernel oracle cannot run whose data does not say so.
    #[error("the kernel oracle cannot run this case ({0}): a case says so in `skip.kernel`")]
    NotForKernel(String),
    /// The kernel oracle failed.
    #[error(transparent)]
    Oracle(#[from] OracleError),
}

fn read(path: &Path) -> Result<Vec<u8>, CaseError> {
    std::fs::read(path).map_err(|source| CaseError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A case as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    ruleset: Option<String>,
    rules: Option<String>,
    after: Option<String>,
    profile: Option<toml::Value>,
    pod_ips: Option<Vec<IpAddr>>,
    #[serde(default = "tcp")]
    proto: String,
    src: Option<IpAddr>,
    dst: IpAddr,
    #[serde(default = "default_sport")]
    sport: u16,
    dport: u16,
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
    #[serde(default)]
    mark: u32,
    #[serde(default)]
    from_outside: bool,
    iface: Option<String>,
    hits: Vec<String>,
    delivery: String,
    original_dst: Option<SocketAddr>,
    expected_from: String,
    why: Option<String>,
    #[serde(default)]
    skip: BTreeMap<Engine, String>,
    #[serde(default = "one")]
    repeat: usize,
}

fn tcp() -> String {
    "tcp".into()
}

fn default_sport() -> u16 {
    40000
}

fn one() -> usize {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// Rulesets given inline, by name, for several cases.
    #[serde(default)]
    rulesets: BTreeMap<String, String>,
    case: Vec<RawCase>,
}

/// A hit as cases write it: `HOOK: TABLE CHAIN RULE` (`OUTPUT: nat ISTIO_OUTPUT 4`), the way
/// the kernel oracle reports hits. With several nftables tables at one place, `TABLE/N` names
/// the N-th of them in the order they were created (`nat/1`, [`sidecar_model::Ruleset::table_at`]).
pub fn parse_hit(s: &str) -> Result<RuleRef, String> {
    let bad = || format!("hit `{s}` is not `HOOK: TABLE CHAIN RULE`");
    let (hook, rest) = s.split_once(": ").ok_or_else(bad)?;
    let hook = Hook::from_name(hook).ok_or_else(bad)?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let [table, chain, rule] = words.as_slice() else {
        return Err(bad());
    };
    let (table, part) = match table.split_once('/') {
        Some((t, n)) => (t, n.parse().map_err(|_| bad())?),
        None => (*table, 0),
    };
    Ok(RuleRef {
        table: TableKind::from_name(table).ok_or_else(bad)?,
        part,
        chain: chain.to_string(),
        rule: rule.parse().ok().filter(|&r| r > 0).ok_or_else(bad)?,
        hook,
    })
}

/// A hit as cases write it ([`parse_hit`]).
pub fn show_hit(r: &RuleRef) -> String {
    let part = if r.part > 0 {
        format!("/{}", r.part)
    } else {
        String::new()
    };
    format!("{}: {}{part} {} {}", r.hook, r.table, r.chain, r.rule)
}

/// A delivery as cases write it: `listener PORT`, `app PORT`, `remote ADDRESS:PORT` or
/// `dropped`.
pub fn parse_delivery(s: &str) -> Result<Delivery, String> {
    let bad = || {
        format!(
            "delivery `{s}` is not `listener PORT`, `app PORT`, `remote ADDRESS:PORT` or `dropped`"
        )
    };
    let port = |p: &str| p.parse::<u16>().map_err(|_| bad());
    match s.split_once(' ') {
        None if s == "dropped" => Ok(Delivery::Dropped),
        Some(("listener", p)) => Ok(Delivery::Listener(port(p)?)),
        Some(("app", p)) => Ok(Delivery::App(port(p)?)),
        Some(("remote", a)) => a.parse().map(Delivery::Remote).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// A delivery as cases write it ([`parse_delivery`]).
pub fn show_delivery(d: &Delivery) -> String {
    match d {
        Delivery::Listener(p) => format!("listener {p}"),
        Delivery::App(p) => format!("app {p}"),
        Delivery::Remote(a) => format!("remote {a}"),
        Delivery::Dropped => "dropped".into(),
    }
}

impl RawCase {
    fn finish(self, file: &str, named: &BTreeMap<String, String>) -> Result<Case, String> {
        let ruleset = match (&self.ruleset, self.rules) {
            (Some(spec), None) => Source::parse(spec, named)?,
            (None, Some(text)) => Source::Inline(text),
            _ => return Err("give exactly one of `ruleset` and `rules`".into()),
        };
        let after = self
            .after
            .as_deref()
            .map(|a| Source::parse(a, named))
            .transpose()?;
        let profile = match &self.profile {
            None => Profile::istio(),
            Some(toml::Value::String(name)) => {
                Profile::named(name).ok_or_else(|| format!("unknown profile `{name}`"))?
            }
            Some(toml::Value::Table(t)) => {
                let text = toml::to_string(t).map_err(|e| e.to_string())?;
                Profile::from_toml(&text).map_err(|e| format!("profile: {e}"))?
            }
            Some(_) => return Err("`profile` is a profile name or a table".into()),
        };
        let proto = match self.proto.as_str() {
            "tcp" => 6,
            "udp" => 17,
            p => return Err(format!("proto `{p}` is not `tcp` or `udp`")),
        };
        if self.iface.is_some() && !self.from_outside {
            return Err("`iface` is the interface a connection from outside arrives on".into());
        }
        let hits = self
            .hits
            .iter()
            .map(|h| parse_hit(h))
            .collect::<Result<_, _>>()?;
        let delivery = parse_delivery(&self.delivery)?;
        let in_pod = matches!(delivery, Delivery::Listener(_) | Delivery::App(_));
        if !in_pod && self.original_dst.is_some() {
            return Err("`original_dst` is for a hop delivered in the pod".into());
        }
        if in_pod && proto == 6 && self.original_dst.is_none() {
            return Err("a TCP hop delivered in the pod gives its `original_dst`".into());
        }
        if self.expected_from.trim().is_empty() {
            return Err("`expected_from` must say where the expectation comes from".into());
        }
        if let Some((engine, _)) = self.skip.iter().find(|(_, why)| why.trim().is_empty()) {
            return Err(format!("`skip.{engine}` must say why"));
        }
        if self.repeat == 0 {
            return Err("`repeat` must be at least 1".into());
        }
        Ok(Case {
            file: file.to_string(),
            name: self.name,
            ruleset,
            after,
            profile,
            pod: Pod::new(self.pod_ips.as_deref().unwrap_or(&POD_IPS)),
            connection: Connection {
                proto,
                src: self.src,
                from_outside: self.from_outside,
                mark: self.mark,
                iface: self.iface.as_deref().map(IfName::new),
                ..Connection::tcp(self.dst, self.sport, self.dport, self.uid, self.gid)
            },
            expected: Expected {
                hits,
                delivery,
                original_dst: self.original_dst,
            },
            expected_from: self.expected_from,
            why: self.why,
            skip: self.skip,
            repeat: self.repeat,
        })
    }
}

/// The cases of one file's text; `file` names it in errors.
pub fn parse_cases(file: &str, text: &str) -> Result<Vec<Case>, CaseError> {
    let raw: CaseFile = toml::from_str(text).map_err(|e| CaseError::File {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    raw.case
        .into_iter()
        .map(|c| {
            let name = c.name.clone();
            c.finish(file, &raw.rulesets)
                .map_err(|message| CaseError::Invalid {
                    file: file.to_string(),
                    case: name,
                    message,
                })
        })
        .collect()
}

/// Every case of every `*.toml` in `dir`, file by file in name order; names must be unique.
pub fn load_dir(dir: &Path) -> Result<Vec<Case>, CaseError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CaseError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut cases: Vec<Case> = Vec::new();
    for path in files {
        let file = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let text = String::from_utf8_lossy(&read(&path)?).into_owned();
        for c in parse_cases(&file, &text)? {
            if let Some(other) = cases.iter().find(|o| o.name == c.name) {
                return Err(CaseError::Invalid {
                    file,
                    case: c.name,
                    message: format!("the name is taken by a case of {}", other.file),
                });
            }
            cases.push(c);
        }
    }
    Ok(cases)
}

/// Every case of `corpus/cases/`.
pub fn load_all() -> Result<Vec<Case>, CaseError> {
    load_dir(&crate::corpus::workspace().join("corpus/cases"))
}

impl Expected {
    /// The difference between the expected hits and `got`, if any.
    pub fn hit_difference(&self, got: &[RuleRef]) -> Option<String> {
        (self.hits != got).then(|| {
            let show = |v: &[RuleRef]| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    v.iter().map(show_hit).collect::<Vec<_>>().join(", ")
                }
            };
            format!(
                "rule hits: expected {}; got {}",
                show(&self.hits),
                show(got)
            )
        })
    }

    /// The differences from an engine that tells everything: the hits, the delivery and the
    /// original destination.
    pub fn differences(
        &self,
        hits: &[RuleRef],
        delivery: Delivery,
        original_dst: SocketAddr,
    ) -> Vec<String> {
        let mut out: Vec<String> = self.hit_difference(hits).into_iter().collect();
        if self.delivery != delivery {
            out.push(format!(
                "delivery: expected {}; got {}",
                show_delivery(&self.delivery),
                show_delivery(&delivery)
            ));
        } else if let Some(want) = self.original_dst.filter(|w| *w != original_dst) {
            out.push(format!(
                "original destination: expected {want}; got {original_dst}"
            ));
        }
        out
    }
}

/// A case with its rulesets parsed.
#[derive(Debug, Clone)]
pub struct Loaded<'a> {
    /// The case.
    pub case: &'a Case,
    /// Its ruleset.
    pub rs: Ruleset,
    /// Its `after` ruleset.
    pub after: Option<Ruleset>,
}

impl Case {
    /// The case with its rulesets parsed; none when one of them is in Istio's corpus and that
    /// is not here.
    pub fn load(&self) -> Result<Option<Loaded<'_>>, CaseError> {
        let Some(rs) = self.ruleset.load()? else {
            return Ok(None);
        };
        let after = match &self.after {
            None => None,
            Some(a) => match a.load()? {
                None => return Ok(None),
                Some(after) => Some(after),
            },
        };
        Ok(Some(Loaded {
            case: self,
            rs,
            after,
        }))
    }

    /// Why `engine` cannot run this case, as the data says.
    pub fn skipped_by(&self, engine: Engine) -> Option<&str> {
        self.skip.get(&engine).map(String::as_str)
    }
}
