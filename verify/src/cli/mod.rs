//! The command line: `sidecar-verify <parse|trace|scenarios|check|diff|mutate|kernel|synth> [RULES] …`.
//!
//! Exit codes everywhere: 0 ok / holds / vacuous / no change; 1 violation / unknown / behaviour
//! change / disagreement; 2 bad input or usage.

use std::io::Write as _;

use sidecar_model::eval::IfName;
use sidecar_model::pod::{
    family_of, Connection, Pod, Profile, Simulator, DEFAULT_IPV4, DEFAULT_IPV6,
};

pub use args::*;

mod args;
mod synth;

use crate::input;
use crate::journey_text;
use crate::report::{Document, Source};

/// Runs the command line and returns the process exit code.
pub fn run(mut cli: Cli) -> u8 {
    if let Some(d) = cli.deadline {
        crate::smt::solve::set_deadline(std::time::Instant::now() + d);
    }
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
        Command::Synth(SynthCommand::KubeProxy(a)) => synth::kube_proxy(&a),
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

fn simulator(rules: Option<&str>, pod: &PodArgs) -> Result<(input::Loaded, Simulator), u8> {
    // Without RULES, the default ruleset of the mesh the profile is built on (`--profile kuma`,
    // `--kuma-args`, a file whose `base` is `linkerd`): the classic one for istio.
    let (loaded, profile) = match rules {
        Some(_) => (load(rules)?, load_profile(pod)?),
        None => {
            let profile = load_profile(pod)?;
            let loaded = input::load_default(&profile.base).map_err(|e| {
                report(&e);
                2u8
            })?;
            (loaded, profile)
        }
    };
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

/// Says why the proofs could not be made and gives the exit code: 1 when the SMT encoding and
/// the evaluator disagree (an internal error, not bad input), 2 when the ruleset cannot be
/// encoded.
fn prove_failed(name: &str, e: &crate::check::ProveError) -> u8 {
    if let crate::check::ProveError::Disagreement { .. } = e {
        eprintln!("error: {e}");
        return 1;
    }
    eprintln!("error: {name}: {e}");
    2
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
        slice_min_keys: if a.no_slicing {
            usize::MAX
        } else {
            crate::prove::slice::MIN_KEYS
        },
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
        Err(e) => return prove_failed(&loaded.name, &e),
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

/// A text report coloured for the terminal when it goes to stdout ([`crate::term::paint`]); a
/// file gets it as it is.
fn painted(text: String, output: Option<&std::path::Path>) -> String {
    match output {
        None => crate::term::paint(&text),
        Some(_) => text,
    }
}

/// Writes `out` to `path`, or to stdout; 0 when it worked, 2 (with a message) when not.
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
        slice_min_keys: if a.no_slicing {
            usize::MAX
        } else {
            crate::prove::slice::MIN_KEYS
        },
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
const DEFAULT_ACCEPT: &str = include_str!("../../../corpus/istio-classic.rules.mutate.toml");

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
        // (Only for the classic ruleset: a mesh profile's own default ruleset has none.)
        None if a.rules.is_none() && loaded.name == input::DEFAULT_NAME => Some((
            std::path::PathBuf::from("<default: istio-classic.rules.mutate.toml>"),
            DEFAULT_ACCEPT.to_string(),
        )),
        None => None,
    };
    let accepts = match &source {
        None => Vec::new(),
        Some((p, text)) => {
            let parsed = accept::parse(p, text).and_then(|v| {
                let all = sidecar_model::mutate::mutations(rs);
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
    let report = match crate::mutate::mutate(rs, &sim.pod, &sim.profile, &accepts, &opts) {
        Ok(r) => r,
        Err(e) => return prove_failed(&loaded.name, &e),
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
