//! The command line's definitions: the options and subcommands as clap reads them, and the
//! small value parsers they use. What each subcommand does is in `cli/mod.rs`.

use std::net::IpAddr;
use std::sync::LazyLock;

use clap::{Parser, Subcommand};
use sidecar_model::profile::{builtin_list, BUILTIN};

/// The version `--version` prints: the crate's, and the git revision it was built from
/// (verify/build.rs; `unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SIDECAR_VERIFY_REVISION"),
    ")"
);

/// Verification and fuzz suite for the iptables rules a service-mesh sidecar installs.
///
/// RULES is a file in iptables-save, iptables-restore, iptables-command or nft form, `-` for
/// stdin, or a live network namespace: `netns:NAME|PATH` or `pid:PID` (as root; `--netns` and
/// `--pid` say the same); without it, the classic Istio sidecar ruleset built into the tool is used.
#[derive(Debug, Parser)]
#[command(name = "sidecar-verify", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Print nothing on stderr but errors: no progress bar, no notes.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Colour the text reports' statuses: `auto` (on a terminal, unless NO_COLOR is set),
    /// `always` or `never`.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
    /// The family of a save or restore text without a header (`ip6tables-save` output with its
    /// comments cut): `ipv4` or `ipv6`; without it, IPv6 when its addresses are, and an input
    /// mixing both with no marker is refused.
    #[arg(long, global = true, value_name = "FAMILY", value_parser = ["ipv4", "ipv6"])]
    pub family: Option<String>,
    /// A time limit for the whole command (`10s`, `2m`, `1m30s`, `500ms`): what the solver has
    /// not decided by then is reported `unknown` (exit 1), never as a pass. The encoding and
    /// the evaluator's work are not cut short, so a run may end a little after it.
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub deadline: Option<std::time::Duration>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a ruleset and print it as canonical iptables-save text (or the typed model as JSON).
    Parse {
        /// The ruleset: a path, `-` for stdin, or a live network namespace, `netns:NAME|PATH` or
        /// `pid:PID` (default: the embedded classic Istio ruleset).
        rules: Option<String>,
        /// Print the typed model as JSON instead.
        #[arg(long)]
        json: bool,
        /// The pod's addresses (accepted for symmetry with the other subcommands; unused here).
        #[arg(long = "pod-ip", value_name = "IP")]
        pod_ip: Vec<IpAddr>,
        /// Read the rules of a live network namespace instead.
        #[command(flatten)]
        live: LiveArgs,
    },
    /// Follow one connection through the rules and the proxy's re-connections, hop by hop.
    Trace(TraceArgs),
    /// Run the six kinds of sidecar traffic of the article "Traffic types and iptables rules in
    /// Istio sidecar explained" (Tetrate blog) and the cases users hit, built from the profile,
    /// and, under a profile built on `istio`, compare the path the article claims with the
    /// path the model computes.
    Scenarios(ScenarioArgs),
    /// Prove the invariants over every connection (or show one that breaks each), and report
    /// rules no connection can reach or match.
    Check(CheckArgs),
    /// Show which connections behave differently between two rulesets, one witness per class.
    Diff(DiffArgs),
    /// Prove every single-rule mutant of the ruleset: which ones the invariants kill, which
    /// change nothing, and which change behaviour unnoticed (survivors: where the catalog is
    /// blind). Survivors may be accepted with a reason in `RULES.mutate.toml` beside the ruleset.
    Mutate(MutateArgs),
    /// Compare the model with Linux netfilter: run flows in a pod made of network namespaces and
    /// check, flow by flow, the rules each first packet hit (nftables tracing) and where it arrived.
    Kernel(KernelArgs),
    /// Write a synthetic ruleset of a node's size to stdout (deterministic for a seed), for
    /// scale work: `synth kube-proxy --services N`.
    #[command(subcommand)]
    Synth(SynthCommand),
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell) on stdout,
    /// e.g. `sidecar-verify completions bash > /etc/bash_completion.d/sidecar-verify`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout: `sidecar-verify man > sidecar-verify.1`.
    Man,
    /// (internal) The listener and flow runner the kernel oracle starts in each namespace.
    #[command(name = "__agent", hide = true)]
    Agent {
        /// Ports to listen on (TCP and UDP).
        ports: Vec<u16>,
    },
    /// (internal) One client flow of the kernel oracle.
    #[command(name = "__connect", hide = true)]
    Connect {
        /// Flow id.
        id: String,
        /// tcp or udp.
        proto: String,
        /// Source to bind, or `-`.
        src: String,
        /// Source port to bind.
        sport: String,
        /// Destination address.
        dst: String,
        /// Destination port.
        dport: String,
        /// Open the socket with this filesystem uid (staying root, for `--mark`).
        #[arg(long)]
        fsuid: Option<u32>,
        /// Open the socket with this filesystem gid.
        #[arg(long)]
        fsgid: Option<u32>,
        /// SO_MARK of the socket.
        #[arg(long, default_value_t = 0)]
        mark: u32,
    },
}

/// Where the pod is and what mesh it runs.
#[derive(Debug, Clone, clap::Args)]
pub struct PodArgs {
    /// The pod's IP; repeat for several (IPv4 and IPv6). Every family the ruleset holds tables
    /// for is checked: one no `--pod-ip` is of gets its default address (IPv4 10.1.0.5, IPv6
    /// fd00::5).
    #[arg(long = "pod-ip", value_name = "IP")]
    pub pod_ip: Vec<IpAddr>,
    /// The mesh profile: a built-in one or a TOML file (the help, `PROFILE_HELP`, lists the
    /// built-in ones).
    #[arg(long, default_value = "istio", value_name = PROFILE_VALUE.as_str(), help = PROFILE_HELP.as_str())]
    pub profile: String,
    /// The generator's own flags, refining `--profile` (crate::generator).
    #[command(flatten)]
    pub generator: crate::generator::GeneratorArgs,
}

/// `--netns`/`--pid`: the flag form of RULES `netns:NAME|PATH` and `pid:PID` (crate::live).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LiveArgs {
    /// Read the rules of this network namespace (as root): a name under /var/run/netns or a path
    /// such as /proc/PID/ns/net; the same as RULES `netns:NAME|PATH`.
    #[arg(long, value_name = "NAME|PATH", conflicts_with_all = ["rules", "pid"])]
    pub netns: Option<String>,
    /// Read the rules of this process's network namespace (as root); the same as RULES
    /// `pid:PID`.
    #[arg(long, value_name = "PID", conflicts_with = "rules")]
    pub pid: Option<u32>,
}

impl LiveArgs {
    /// The RULES spelling of the flags, when one is given.
    fn rules(&self) -> Option<String> {
        use crate::live::{NETNS_PREFIX, PID_PREFIX};
        match (&self.netns, self.pid) {
            (Some(n), _) => Some(format!("{NETNS_PREFIX}{n}")),
            (None, Some(p)) => Some(format!("{PID_PREFIX}{p}")),
            (None, None) => None,
        }
    }
}

impl Command {
    /// Turns `--netns`/`--pid` into RULES, so that every subcommand reads them through
    /// `input::load` as it reads `netns:…`/`pid:…` (clap refuses a flag beside RULES).
    pub(super) fn fold_live(&mut self) {
        let (rules, live) = match self {
            Command::Parse { rules, live, .. } => (rules, &*live),
            Command::Trace(a) => (&mut a.rules, &a.live),
            Command::Scenarios(a) => (&mut a.rules, &a.live),
            Command::Check(a) => (&mut a.rules, &a.live),
            Command::Mutate(a) => (&mut a.rules, &a.live),
            Command::Kernel(a) => (&mut a.rules, &a.live),
            Command::Diff(_)
            | Command::Synth(_)
            | Command::Completions { .. }
            | Command::Man
            | Command::Agent { .. }
            | Command::Connect { .. } => return,
        };
        if let Some(r) = live.rules() {
            *rules = Some(r);
        }
    }
}

/// `--profile`'s value: the built-in profiles' names or a file (`istio|ambient|FILE`).
static PROFILE_VALUE: LazyLock<String> = LazyLock::new(|| {
    let mut v: Vec<&str> = BUILTIN.iter().map(|b| b.name).collect();
    v.push("FILE");
    v.join("|")
});

/// `--profile`'s help, from the table of built-in profiles.
static PROFILE_HELP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "The mesh profile: {}, or a TOML file overriding any of the values of the profile its `base` key names (default istio)",
        builtin_list()
    )
});

/// Arguments of `trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// The ruleset: a path, `-` for stdin, or a live network namespace, `netns:NAME|PATH` or
    /// `pid:PID` (default: the embedded classic Istio ruleset).
    pub rules: Option<String>,
    /// Read the rules of a live network namespace instead.
    #[command(flatten)]
    pub live: LiveArgs,
    /// The opening process's uid (default: the profile's application uid).
    #[arg(long)]
    pub uid: Option<u32>,
    /// The opening process's gid (default: the profile's application gid).
    #[arg(long)]
    pub gid: Option<u32>,
    /// Destination address.
    #[arg(long)]
    pub dst: IpAddr,
    /// Destination port.
    #[arg(long)]
    pub dport: u16,
    /// Bind this source address (from outside: the remote peer's address, default 10.1.0.99).
    #[arg(long)]
    pub src: Option<IpAddr>,
    /// Source port.
    #[arg(long, default_value_t = 40000)]
    pub sport: u16,
    /// Protocol.
    #[arg(long, default_value = "tcp", value_parser = ["tcp", "udp"])]
    pub proto: String,
    /// The first connection arrives on eth0 from a remote peer.
    #[arg(long)]
    pub from_outside: bool,
    /// With `--from-outside`: the interface it arrives on (default eth0), e.g. a virtual one.
    #[arg(long, requires = "from_outside", value_name = "NAME")]
    pub iface: Option<String>,
    /// The socket mark (SO_MARK) of a connection opened here, e.g. 0x539 for ambient's ztunnel.
    #[arg(long, value_parser = parse_mark, conflicts_with = "from_outside", value_name = "MARK")]
    pub mark: Option<u32>,
    /// Where the pod is and what mesh it runs.
    #[command(flatten)]
    pub pod: PodArgs,
    /// Print the journey as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `scenarios`.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// The ruleset: a path, `-` for stdin, or a live network namespace, `netns:NAME|PATH` or
    /// `pid:PID` (default: the embedded classic Istio ruleset).
    pub rules: Option<String>,
    /// Read the rules of a live network namespace instead.
    #[command(flatten)]
    pub live: LiveArgs,
    /// Where the pod is and what mesh it runs.
    #[command(flatten)]
    pub pod: PodArgs,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The ruleset: a path, `-` for stdin, or a live network namespace, `netns:NAME|PATH` or
    /// `pid:PID` (default: the embedded classic Istio ruleset).
    pub rules: Option<String>,
    /// Read the rules of a live network namespace instead.
    #[command(flatten)]
    pub live: LiveArgs,
    /// Where the pod is and what mesh it runs.
    #[command(flatten)]
    pub pod: PodArgs,
    /// Range over every header combination instead of the connections routing produces.
    #[arg(long)]
    pub no_routing: bool,
    /// Prove the whole ruleset at once instead of region by region, service by service
    /// (docs/scale.md, "Slicing by destination"): slower on a node's table, for cross-checking.
    #[arg(long)]
    pub no_slicing: bool,
    /// Output format.
    #[arg(long, default_value = "text", value_parser = ["text", "json", "markdown", "sarif", "html"])]
    pub format: String,
    /// Write the report here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Per-query solver timeout in milliseconds (a timeout is reported as unknown).
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u32,
    /// Also say why each invariant that holds holds: the rules its proof rests on (it holds
    /// whatever the other rules match). Costs several times the proofs.
    #[arg(long)]
    pub why: bool,
    /// How Markdown and SARIF reports are fitted for a pull request.
    #[command(flatten)]
    pub fit: FitArgs,
}

/// How Markdown and SARIF reports are fitted for a pull request (`check`, `diff`).
#[derive(Debug, Clone, clap::Args)]
pub struct FitArgs {
    /// Markdown: the most bytes the report may take, so that it fits one pull-request comment
    /// (GitHub's limit is 65,536 characters); past it the least important parts are shortened
    /// (classes told in one line each, without journeys), with a note saying so. 0: unlimited.
    #[arg(long, value_name = "N", default_value_t = crate::report::budget::DEFAULT_MAX_BYTES, value_parser = parse_max_bytes)]
    pub max_bytes: usize,
    /// SARIF: the directory the rulesets' paths are made relative to (the `%SRCROOT%` base
    /// GitHub code scanning resolves against the repository; default: the working directory).
    #[arg(long, value_name = "DIR")]
    pub sarif_root: Option<std::path::PathBuf>,
    /// Also write the report in FORMAT (json, markdown, sarif or html) to FILE, from the same
    /// run; repeatable. Markdown written this way is whole (no `--max-bytes`).
    #[arg(long, value_name = "FORMAT:FILE", value_parser = parse_also)]
    pub also: Vec<(String, std::path::PathBuf)>,
}

/// `--also FORMAT:FILE`.
fn parse_also(s: &str) -> Result<(String, std::path::PathBuf), String> {
    let (format, file) = s
        .split_once(':')
        .filter(|(_, f)| !f.is_empty())
        .ok_or_else(|| format!("`{s}` is not FORMAT:FILE"))?;
    if !["json", "markdown", "sarif", "html"].contains(&format) {
        return Err(format!(
            "`{format}` is not a format `--also` writes (json, markdown, sarif, html)"
        ));
    }
    Ok((format.to_string(), file.into()))
}

/// `--max-bytes`: 0 (unlimited) or at least the least a shortened report fits in.
fn parse_max_bytes(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|e| format!("`{s}` is not a number of bytes: {e}"))?;
    let min = crate::report::budget::MIN_MAX_BYTES;
    if n != 0 && n < min {
        return Err(format!(
            "`{s}` is below {min}, the least a shortened report fits in (0: unlimited)"
        ));
    }
    Ok(n)
}

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The old ruleset (a path, `-` for stdin, `netns:NAME|PATH` or `pid:PID`).
    pub old: String,
    /// The new ruleset (the same forms).
    pub new: String,
    /// Where the pod is and what mesh it runs.
    #[command(flatten)]
    pub pod: PodArgs,
    /// Output format.
    #[arg(long, default_value = "text", value_parser = ["text", "json", "markdown", "sarif", "html"])]
    pub format: String,
    /// Write the report here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// The most classes of changed connections to enumerate per family.
    #[arg(long, default_value_t = 32)]
    pub max_classes: usize,
    /// Compare the whole rulesets at once instead of region by region, service by service
    /// (docs/scale.md, "Slicing by destination"): slower on a node's table, for cross-checking.
    #[arg(long)]
    pub no_slicing: bool,
    /// Per-query solver timeout in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u32,
    /// How Markdown and SARIF reports are fitted for a pull request.
    #[command(flatten)]
    pub fit: FitArgs,
}

/// Arguments of `mutate`.
#[derive(Debug, clap::Args)]
pub struct MutateArgs {
    /// The ruleset: a path, `-` for stdin, or a live network namespace, `netns:NAME|PATH` or
    /// `pid:PID` (default: the embedded classic Istio ruleset).
    pub rules: Option<String>,
    /// Read the rules of a live network namespace instead.
    #[command(flatten)]
    pub live: LiveArgs,
    /// Where the pod is and what mesh it runs.
    #[command(flatten)]
    pub pod: PodArgs,
    /// The accepted survivors (default: `RULES.mutate.toml` beside the ruleset, when it exists).
    #[arg(long, value_name = "FILE")]
    pub accept: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, default_value = "text", value_parser = ["text", "json", "markdown"])]
    pub format: String,
    /// Write the report here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Per-query solver timeout in milliseconds (a timeout makes the mutant unknown).
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u32,
    /// Markdown: the most bytes the report may take (one pull-request comment); past it the
    /// mutant tables are shortened, with a note saying so. 0: unlimited.
    #[arg(long, value_name = "N", default_value_t = crate::report::budget::DEFAULT_MAX_BYTES, value_parser = parse_max_bytes)]
    pub max_bytes: usize,
}

/// Arguments of `kernel`.
#[derive(Debug, clap::Args)]
pub struct KernelArgs {
    /// The ruleset: a path, `-` for stdin, or a live network namespace, `netns:NAME|PATH` or
    /// `pid:PID` (default: the embedded classic Istio ruleset).
    pub rules: Option<String>,
    /// Read the rules of a live network namespace instead.
    #[command(flatten)]
    pub live: LiveArgs,
    /// Random flows to run besides the scenarios' connections.
    #[arg(long, default_value_t = 200)]
    pub flows: usize,
    /// Seed of the random flows (the same seed gives the same flows everywhere).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Flows per counter read (a batch that does not add up is re-run flow by flow).
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Where the pod is and what mesh it runs (the oracle's pod is 10.1.0.5 and fd00::5).
    #[command(flatten)]
    pub pod: PodArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `synth` writes.
#[derive(Debug, Subcommand)]
pub enum SynthCommand {
    /// The nat table kube-proxy's iptables mode keeps for N services (one port each, K
    /// endpoints each), as `iptables-save` prints it; with `--mesh`, a node's nat table with a
    /// mesh's rules merged in (a host-network pod with a sidecar: docs/scale.md).
    KubeProxy(KubeProxyArgs),
}

/// Arguments of `synth kube-proxy`.
#[derive(Debug, clap::Args)]
pub struct KubeProxyArgs {
    /// Services, one port each (cluster IPs from 10.96.0.0/12).
    #[arg(long, value_name = "N")]
    pub services: usize,
    /// Endpoints per service (from 10.244.0.0/16).
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub endpoints: usize,
    /// Every M-th service is a NodePort service (the first, the M+1-th, …); 0: none.
    #[arg(long, value_name = "M", default_value_t = 10)]
    pub nodeport_every: usize,
    /// Merge this mesh's built-in ruleset in, its jumps first in the built-in chains.
    #[arg(long, value_name = "MESH", value_parser = ["istio", "kuma", "linkerd", "consul"])]
    pub mesh: Option<String>,
    /// The form: `iptables` (iptables-save text) or `nft` (kube-proxy's nftables mode; not
    /// built yet: exits 2).
    #[arg(long, default_value = "iptables", value_parser = ["iptables", "nft"])]
    pub backend: String,
    /// The seed of names, addresses and ports.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// A mark in decimal or `0x` hex.
fn parse_mark(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("`{s}` is not a mark (decimal or 0x hex): {e}"))
}
