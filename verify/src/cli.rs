//! The command line: `sidecar-verify <parse|trace|scenarios|check|diff|kernel> [RULES] …`.
//!
//! Exit codes everywhere: 0 ok / holds / no change; 1 violation / behaviour change / disagreement;
//! 2 bad input or usage.

use std::io::Write as _;

use std::net::IpAddr;

use clap::{Parser, Subcommand};

use crate::input;

/// Verification and fuzz suite for the iptables rules a service-mesh sidecar installs.
///
/// RULES is a file in iptables-save, iptables-restore or iptables-command form, or `-` for
/// stdin; without it, the classic Istio sidecar ruleset built into the tool is used.
#[derive(Debug, Parser)]
#[command(name = "sidecar-verify", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a ruleset and print it as canonical iptables-save text (or the typed model as JSON).
    Parse {
        /// The ruleset: a path, or `-` for stdin (default: the embedded classic Istio ruleset).
        rules: Option<String>,
        /// Print the typed model as JSON instead.
        #[arg(long)]
        json: bool,
        /// The pod's addresses (accepted for symmetry with the other subcommands; unused here).
        #[arg(long = "pod-ip", value_name = "IP")]
        pod_ip: Vec<IpAddr>,
    },
    /// Follow one connection through the rules and the proxy, hop by hop (not available yet).
    #[command(disable_help_flag = false)]
    Trace(Pending),
    /// Run the six kinds of sidecar traffic and the cases users hit (not available yet).
    Scenarios(Pending),
    /// Prove the invariants over all connections and report unreachable rules (not available yet).
    Check(Pending),
    /// Show which connections behave differently between two rulesets (not available yet).
    Diff(Pending),
    /// Compare the model with Linux netfilter in network namespaces (not available yet).
    Kernel(Pending),
}

/// Arguments of a subcommand that a later issue builds.
#[derive(Debug, clap::Args)]
pub struct Pending {
    /// Any arguments; none are read yet.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}

/// Runs the command line and returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Parse { rules, json, .. } => parse(rules.as_deref(), json),
        Command::Trace(_) => pending("trace"),
        Command::Scenarios(_) => pending("scenarios"),
        Command::Check(_) => pending("check"),
        Command::Diff(_) => pending("diff"),
        Command::Kernel(_) => pending("kernel"),
    }
}

fn pending(name: &str) -> u8 {
    eprintln!("sidecar-verify {name}: not available yet (a later issue builds it)");
    2
}

/// Prints an error for a person: the `file:line:column: message` line, then the snippet.
pub fn report(err: &input::LoadError) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {err}");
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

fn parse(rules: Option<&str>, json: bool) -> u8 {
    let loaded = match input::load(rules) {
        Ok(l) => l,
        Err(e) => {
            report(&e);
            return 2;
        }
    };
    let out = if json {
        match serde_json::to_string_pretty(&loaded.parsed.ruleset) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("error: cannot serialise the model: {e}");
                return 2;
            }
        }
    } else {
        sidecar_model::print_ruleset(&loaded.parsed.ruleset)
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return 2;
    }
    0
}
