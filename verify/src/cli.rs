//! The command line: `sidecar-verify <parse|trace|scenarios|check|diff|mutate|kernel> [RULES] …`.
//!
//! Exit codes everywhere: 0 ok / holds / vacuous / no change; 1 violation / unknown / behaviour
//! change / disagreement; 2 bad input or usage.

use std::io::Write as _;
use std::net::IpAddr;
use std::sync::LazyLock;

use clap::{Parser, Subcommand};
use sidecar_model::eval::IfName;
use sidecar_model::pod::{
    family_of, Connection, Pod, Profile, Simulator, DEFAULT_IPV4, DEFAULT_IPV6,
};
use sidecar_model::profile::{builtin_list, BUILTIN};

use crate::input;
use crate::journey_text;
use crate::report::{Document, Source};

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
    fn fold_live(&mut self) {
        let (rules, live) = match self {
            Command::Parse { rules, live, .. } => (rules, &*live),
            Command::Trace(a) => (&mut a.rules, &a.live),
            Command::Scenarios(a) => (&mut a.rules, &a.live),
            Command::Check(a) => (&mut a.rules, &a.live),
            Command::Mutate(a) => (&mut a.rules, &a.live),
            Command::Kernel(a) => (&mut a.rules, &a.live),
            Command::Diff(_)
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

/// Writes the `--also` reports; 0 when all were written, 2 (with a message) when not.
fn deliver_also(fit: &FitArgs, report: &impl serde::Serialize, doc: &Document<'_>) -> u8 {
    let whole = FitArgs {
        max_bytes: 0,
        ..fit.clone()
    };
    for (format, file) in &fit.also {
        let code = render(format, report, doc, &whole, String::new)
            .map_or_else(|code| code, |out| deliver(Some(file), &out));
        if code != 0 {
            return code;
        }
    }
    0
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

/// Runs the command line and returns the process exit code.
pub fn run(mut cli: Cli) -> u8 {
    cli.command.fold_live();
    let family = match cli.family.as_deref() {
        Some("ipv6") => Some(sidecar_model::Family::Ipv6),
        Some(_) => Some(sidecar_model::Family::Ipv4),
        None => None,
    };
    crate::term::init(cli.quiet, &cli.color, family);
    let code = run_command(cli.command);
    crate::progress::finish();
    code
}

fn run_command(command: Command) -> u8 {
    match command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "sidecar-verify", &mut std::io::stdout());
            0
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            match clap_mangen::Man::new(cmd).render(&mut out) {
                Ok(()) => emit(&String::from_utf8_lossy(&out)),
                Err(e) => {
                    eprintln!("error: cannot write the man page: {e}");
                    2
                }
            }
        }
        Command::Parse { rules, json, .. } => parse(rules.as_deref(), json),
        Command::Trace(a) => trace(&a),
        Command::Scenarios(a) => scenarios(&a),
        Command::Check(a) => check(&a),
        Command::Diff(a) => diff(&a),
        Command::Mutate(a) => mutate(&a),
        Command::Kernel(a) => kernel(&a),
        Command::Agent { ports } => crate::kernel::agent::agent(&ports),
        Command::Connect {
            id,
            proto,
            src,
            sport,
            dst,
            dport,
            fsuid,
            fsgid,
            mark,
        } => crate::kernel::agent::connect_as(
            &id,
            &proto,
            &src,
            &sport,
            &dst,
            &dport,
            crate::kernel::agent::SocketAs {
                fs_ids: fsuid.zip(fsgid),
                mark,
            },
        ),
    }
}

/// Prints an error for a person: the `file:line:column: message` line, then the snippet.
pub fn report(err: &input::LoadError) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {err}");
    if let Some(help) =
        miette::Diagnostic::help(err).filter(|_| !matches!(err, input::LoadError::Parse(_)))
    {
        let _ = writeln!(stderr, "  help: {help}");
    }
    if let input::LoadError::Parse(pe) = err {
        // The snippet and the hint; the message itself is on the line above.
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
        let mut out = String::new();
        if handler.render_report(&mut out, &Snippet(pe)).is_ok() {
            let body: Vec<&str> = out.lines().skip(1).collect();
            let _ = writeln!(stderr, "{}", body.join("\n"));
        }
    }
}

/// A parse error without its message, so that miette draws only the snippet and the hint.
#[derive(Debug)]
struct Snippet<'a>(&'a sidecar_model::ParseError);

impl std::fmt::Display for Snippet<'_> {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

impl std::error::Error for Snippet<'_> {}

impl miette::Diagnostic for Snippet<'_> {
    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.0.help()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.0.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.0.labels()
    }
}

/// Loads RULES, saying on stderr which backends a live namespace held; 2 after the error.
fn load(rules: Option<&str>) -> Result<input::Loaded, u8> {
    let loaded = input::load(rules).map_err(|e| {
        report(&e);
        2u8
    })?;
    if let Some(summary) = &loaded.live {
        crate::term::note(&summary.to_string());
    }
    Ok(loaded)
}

fn parse(rules: Option<&str>, json: bool) -> u8 {
    let loaded = match load(rules) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if json {
        return to_json(&loaded.parsed.ruleset, "the model").map_or_else(|code| code, |s| emit(&s));
    }
    emit(&sidecar_model::print_ruleset(&loaded.parsed.ruleset))
}

/// `value` as pretty JSON with a final newline; 2 (with a message naming `what`) when it cannot
/// be serialised.
fn to_json(value: &impl serde::Serialize, what: &str) -> Result<String, u8> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| {
            eprintln!("error: cannot serialise {what}: {e}");
            2
        })
}

/// A mark in decimal or `0x` hex.
fn parse_mark(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("`{s}` is not a mark (decimal or 0x hex): {e}"))
}

fn simulator(rules: Option<&str>, pod: &PodArgs) -> Result<(input::Loaded, Simulator), u8> {
    // Without RULES, the profile's own default ruleset (the classic one for istio).
    let loaded = match rules {
        Some(_) => load(rules)?,
        None => input::load_default(&pod.profile).map_err(|e| {
            report(&e);
            2u8
        })?,
    };
    let profile = load_profile(pod)?;
    let rs = &loaded.parsed.ruleset;
    let sim = Simulator::new(rs, Pod::for_rulesets(&pod.pod_ip, &[rs]), profile);
    Ok((loaded, sim))
}

fn load_profile(pod: &PodArgs) -> Result<Profile, u8> {
    crate::generator::profile(&pod.profile, &pod.generator).map_err(|e| {
        eprintln!("error: {e}");
        2u8
    })
}

fn emit(text: &str) -> u8 {
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return 2;
    }
    0
}

fn check(a: &CheckArgs) -> u8 {
    let (loaded, sim) = match simulator(a.rules.as_deref(), &a.pod) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let rs = &loaded.parsed.ruleset;
    let opts = crate::check::Options {
        routing: !a.no_routing,
        timeout_ms: a.timeout_ms,
    };
    let canonical = sidecar_model::print_ruleset(rs);
    let report = match crate::check::check(rs, &canonical, &sim.pod, &sim.profile, &opts).and_then(
        |mut r| {
            if a.why {
                crate::check::explain(rs, &sim.pod, &sim.profile, &opts, &mut r)?;
            }
            Ok(r)
        },
    ) {
        Ok(r) => r,
        Err(e @ crate::check::ProveError::Disagreement { .. }) => {
            eprintln!("error: {e}");
            return 1;
        }
        Err(e) => {
            eprintln!("error: {}: {e}", loaded.name);
            return 2;
        }
    };
    let rules_arg = a.rules.clone().unwrap_or_default();
    let name = loaded.shown_name();
    let doc = Document::Check {
        report: &report,
        source: Source {
            name: &name,
            ruleset: rs,
        },
        pod: &sim.pod,
    };
    let out = match render(&a.format, &report, &doc, &a.fit, || {
        let text = crate::report::text::check(&report, rs, &rules_arg, &sim.pod);
        painted(text, a.output.as_deref())
    }) {
        Ok(o) => o,
        Err(code) => return code,
    };
    if deliver(a.output.as_deref(), &out) != 0 || deliver_also(&a.fit, &report, &doc) != 0 {
        return 2;
    }
    // Violated or unknown: not a pass.
    u8::from(!report.all_hold())
}

/// A report in `format`: `json` (the report itself), `sarif`, `markdown`, `html` (from the
/// document), or `text`.
fn render(
    format: &str,
    report: &impl serde::Serialize,
    doc: &Document<'_>,
    fit: &FitArgs,
    text: impl FnOnce() -> String,
) -> Result<String, u8> {
    // The report is serialised as it is (a `serde_json::Value` would sort its keys).
    match format {
        "json" => to_json(report, "the report"),
        "sarif" => {
            let opts = crate::report::sarif::Options {
                root: fit.sarif_root.clone(),
            };
            to_json(&crate::report::sarif::sarif_with(doc, &opts), "the report")
        }
        "markdown" => Ok(crate::report::markdown::markdown_within(
            doc,
            (fit.max_bytes > 0).then_some(fit.max_bytes),
        )),
        "html" => Ok(crate::report::html::html(doc)),
        _ => Ok(text()),
    }
}

/// Writes `out` to `path`, or to stdout; 0 when it worked, 2 (with a message) when not.
/// A text report coloured for the terminal when it goes to stdout ([`crate::term::paint`]); a
/// file gets it as it is.
fn painted(text: String, output: Option<&std::path::Path>) -> String {
    match output {
        None => crate::term::paint(&text),
        Some(_) => text,
    }
}

fn deliver(path: Option<&std::path::Path>, out: &str) -> u8 {
    match path {
        Some(p) => match std::fs::write(p, out) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: cannot write `{}`: {e}", p.display());
                2
            }
        },
        None => emit(out),
    }
}

fn diff(a: &DiffArgs) -> u8 {
    if a.old == "-" && a.new == "-" {
        eprintln!("error: only one of OLD and NEW can be read from stdin");
        return 2;
    }
    let old = match load(Some(&a.old)) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let profile = match load_profile(&a.pod) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let new = match load(Some(&a.new)) {
        Ok(l) => l,
        Err(code) => return code,
    };
    // Every family either side holds: a family captured on one side only is a change.
    let pod = Pod::for_rulesets(&a.pod.pod_ip, &[&old.parsed.ruleset, &new.parsed.ruleset]);
    let opts = crate::diff::Options {
        max_classes: a.max_classes,
        timeout_ms: a.timeout_ms,
    };
    let r = match crate::diff::diff(
        &old.parsed.ruleset,
        &new.parsed.ruleset,
        &pod,
        &profile,
        &opts,
    ) {
        Ok(r) => r,
        Err(e @ crate::diff::DiffError::Disagreement(_)) => {
            eprintln!("error: {e}");
            return 1;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let (old_name, new_name) = (old.shown_name(), new.shown_name());
    let doc = Document::Diff {
        report: &r,
        old: Source {
            name: &old_name,
            ruleset: &old.parsed.ruleset,
        },
        new: Source {
            name: &new_name,
            ruleset: &new.parsed.ruleset,
        },
        pod: &pod,
    };
    let out = match render(&a.format, &r, &doc, &a.fit, || {
        // The pod's addresses when they are not the classic 10.1.0.5 alone: which families were
        // compared, and which addresses are defaults.
        let text = crate::report::text::diff(&r);
        let text = if pod.is_classic_default() {
            text
        } else {
            format!("pod {}\n{text}", pod.header())
        };
        painted(text, a.output.as_deref())
    }) {
        Ok(o) => o,
        Err(code) => return code,
    };
    if deliver(a.output.as_deref(), &out) != 0 || deliver_also(&a.fit, &r, &doc) != 0 {
        return 2;
    }
    u8::from(!r.changes.is_empty() || r.unknown)
}

/// The acceptance file of the embedded classic ruleset (`corpus/istio-classic.rules.mutate.toml`).
const DEFAULT_ACCEPT: &str = include_str!("../../corpus/istio-classic.rules.mutate.toml");

fn mutate(a: &MutateArgs) -> u8 {
    use crate::mutate::accept;
    let (loaded, sim) = match simulator(a.rules.as_deref(), &a.pod) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let rs = &loaded.parsed.ruleset;
    // The acceptance file: given, or beside a ruleset read from a file.
    let accept_path = a.accept.clone().or_else(|| {
        a.rules
            .as_deref()
            .filter(|r| *r != "-" && crate::live::Target::from_rules_arg(r).is_none())
            .map(|r| accept::beside(std::path::Path::new(r)))
            .filter(|p| p.exists())
    });
    // The acceptance file's name and text: the one given or beside the ruleset's file, or for
    // the embedded classic ruleset its own, embedded too.
    let source = match &accept_path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => Some((p.clone(), t)),
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", p.display());
                return 2;
            }
        },
        None if a.rules.is_none() => Some((
            std::path::PathBuf::from("<default: istio-classic.rules.mutate.toml>"),
            DEFAULT_ACCEPT.to_string(),
        )),
        None => None,
    };
    let accepts = match &source {
        None => Vec::new(),
        Some((p, text)) => {
            let parsed = accept::parse(p, text).and_then(|v| {
                let all = sidecar_model::mutate::mutants(rs);
                accept::refuse_stale(p, &v, all.iter().map(|(m, _)| m))?;
                Ok(v)
            });
            match parsed {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            }
        }
    };
    let opts = crate::mutate::Options {
        timeout_ms: a.timeout_ms,
    };
    // Progress is drawn by the terminal's listener (crate::term), not here.
    let mut progress = |_: usize, _: usize| {};
    let report =
        match crate::mutate::mutate(rs, &sim.pod, &sim.profile, &accepts, &opts, &mut progress) {
            Ok(r) => r,
            Err(e @ crate::check::ProveError::Disagreement { .. }) => {
                eprintln!("error: {e}");
                return 1;
            }
            Err(e) => {
                eprintln!("error: {}: {e}", loaded.name);
                return 2;
            }
        };
    let rules_arg = a.rules.clone().unwrap_or_default();
    let out = match a.format.as_str() {
        "json" => match to_json(&report, "the report") {
            Ok(o) => o,
            Err(code) => return code,
        },
        "markdown" => crate::report::mutate::markdown_within(
            &report,
            &loaded.shown_name(),
            (a.max_bytes > 0).then_some(a.max_bytes),
        ),
        _ => crate::report::mutate::text(&report, &loaded.shown_name(), &rules_arg, &sim.pod),
    };
    if deliver(a.output.as_deref(), &out) != 0 {
        return 2;
    }
    u8::from(!report.passes())
}

fn trace(a: &TraceArgs) -> u8 {
    let (loaded, sim) = match simulator(a.rules.as_deref(), &a.pod) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if sim.pod.primary(family_of(a.dst)).is_none() {
        let (fam, example) = if a.dst.is_ipv4() {
            ("IPv4", DEFAULT_IPV4.to_string())
        } else {
            ("IPv6", DEFAULT_IPV6.to_string())
        };
        eprintln!(
            "error: `--dst {}` is {fam} and the pod has no {fam} address (the ruleset holds no {fam} tables and no --pod-ip is {fam}); add `--pod-ip` with the pod's {fam} address, e.g. `--pod-ip {example}`",
            a.dst
        );
        return 2;
    }
    if let Some(src) = a.src {
        if src.is_ipv4() != a.dst.is_ipv4() {
            eprintln!(
                "error: `--src {src}` and `--dst {}` are of different families",
                a.dst
            );
            return 2;
        }
    }
    let c = Connection {
        proto: if a.proto == "udp" { 17 } else { 6 },
        src: a.src,
        dst: a.dst,
        sport: a.sport,
        dport: a.dport,
        uid: a.uid.unwrap_or(sim.profile.app_uid),
        gid: a.gid.unwrap_or(sim.profile.app_gid),
        from_outside: a.from_outside,
        mark: a.mark.unwrap_or(0),
        iface: a.iface.as_deref().map(IfName::new),
    };
    let j = sim.journey(&c);
    if a.json {
        to_json(&j, "the journey").map_or_else(|code| code, |s| emit(&s))
    } else {
        emit(&journey_text::journey_text(&loaded.parsed.ruleset, &j))
    }
}

fn scenarios(a: &ScenarioArgs) -> u8 {
    let (_loaded, mut sim) = match simulator(a.rules.as_deref(), &a.pod) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let results = crate::scenarios::run_scenarios(&mut sim);
    if a.json {
        return to_json(&results, "the scenarios").map_or_else(|code| code, |s| emit(&s));
    }
    emit(&crate::scenarios::text(&results, &sim.profile))
}

fn kernel(a: &KernelArgs) -> u8 {
    use crate::kernel as k;
    if a.pod.pod_ip.iter().any(|ip| !k::POD_IPS.contains(ip)) {
        eprintln!(
            "error: the kernel oracle's pod is 10.1.0.5 and fd00::5; `--pod-ip` cannot change it"
        );
        return 2;
    }
    // The oracle's pod has both its addresses.
    let pod = PodArgs {
        pod_ip: k::POD_IPS.to_vec(),
        ..a.pod.clone()
    };
    let (loaded, sim) = match simulator(a.rules.as_deref(), &pod) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if let Some(why) = crate::netns::unavailable() {
        eprintln!("error: the kernel oracle cannot run here: {why}");
        return 2;
    }
    let mut rng = k::SplitMix::new(a.seed);
    let mut ports = k::ports(&sim, &mut rng);
    // The scenarios of the families the other commands check (Pod::for_rulesets): their IPv6
    // counterparts when the ruleset holds IPv6 tables. (The random flows are a quarter IPv6
    // whatever the ruleset: the oracle's pod has both addresses.)
    let rs = &loaded.parsed.ruleset;
    let mut scenario_sim = Simulator::new(
        rs,
        Pod::for_rulesets(&a.pod.pod_ip, &[rs]),
        sim.profile.clone(),
    );
    let mut flows = crate::scenarios::scenario_flows(&mut scenario_sim);
    flows.extend(k::random_flows(&sim, &ports, a.flows, &mut rng));
    // A listener for every port a flow goes to (the scenarios' Envoy ports under another profile).
    ports.extend(flows.iter().map(|f| f.dport));
    ports.sort_unstable();
    ports.dedup();
    let mut tp = match k::TestPod::create(&ports) {
        Ok(tp) => tp,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let report = match k::run(&mut tp, &sim, &flows, a.batch) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    drop(tp);
    let code = u8::from(!report.disagreements.is_empty());
    if a.json {
        return to_json(&report, "the report").map_or_else(|code| code, |s| emit(&s).max(code));
    }
    let mut out = String::new();
    for d in &report.disagreements {
        let f = &d.flow;
        let who = if f.from_outside {
            "from outside".to_string()
        } else {
            format!("uid {} gid {}", f.uid, f.gid)
        };
        let src = f.src.map_or("-".to_string(), |s| s.to_string());
        out.push_str(&format!(
            "DISAGREE {} {src} -> {}:{} ({who}): {}\n  model:  {}\n  kernel: {}\n",
            if f.proto == 17 { "udp" } else { "tcp" },
            f.dst,
            f.dport,
            d.what,
            d.model,
            d.kernel
        ));
    }
    out.push_str(&format!(
        "{}: {} flows compared, {} disagreement(s), {} skipped (undecidable rules), {} skipped (the oracle cannot open them yet: another interface or a source not the pod's), {:.0} flows/s\n",
        loaded.name,
        report.compared,
        report.disagreements.len(),
        report.skipped_undecided,
        report.skipped_unsupported,
        report.flows_per_second
    ));
    emit(&out).max(code)
}
