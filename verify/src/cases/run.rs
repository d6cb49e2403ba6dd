//! The three runners of the hop cases: the concrete evaluator ([`Evaluator`]), the SMT hop
//! encoding with the packet fixed ([`Smt`]) and the kernel oracle ([`Kernel`]); [`run_all`]
//! runs every case in one of them, except the cases whose data says that engine cannot run them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use sidecar_model::pod::{Connection, Delivery, Pod, Profile, Simulator};
use sidecar_model::{Family, Ruleset};

use super::{show_hit, Case, CaseError, Engine, Loaded};
use crate::kernel::trace::{KernelHit, Stray};
use crate::kernel::{self, Expectation, Observed, SplitMix, TestPod, POD_IPS};

/// One engine that runs hop cases.
pub trait Runner {
    /// Which engine it is.
    fn engine(&self) -> Engine;
    /// Runs a case over its rulesets; how what the engine says differs from the case's
    /// expectation (empty: it agrees).
    fn run(&mut self, hop: &Loaded<'_>) -> Result<Vec<String>, CaseError>;
}

/// What one engine made of the cases.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The engine.
    pub engine: Engine,
    /// Cases run.
    pub ran: usize,
    /// Cases not run, each `NAME: why`.
    pub skipped: Vec<String>,
    /// Cases that failed, each with its differences.
    pub failures: Vec<String>,
}

impl std::fmt::Display for Summary {
    /// One line, then one line per skipped case.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "hop cases, {}: {} ran, {} failed, {} skipped",
            self.engine,
            self.ran,
            self.failures.len(),
            self.skipped.len()
        )?;
        for s in &self.skipped {
            writeln!(f, "  skipped {s}")?;
        }
        Ok(())
    }
}

/// Runs every case of `cases` in `runner`, except those whose `skip` names its engine and those
/// whose ruleset is in Istio's corpus when that is not here.
pub fn run_all(runner: &mut dyn Runner, cases: &[Case]) -> Summary {
    let engine = runner.engine();
    let mut sum = Summary {
        engine,
        ran: 0,
        skipped: Vec::new(),
        failures: Vec::new(),
    };
    for case in cases {
        if let Some(why) = case.skipped_by(engine) {
            sum.skipped.push(format!("{}: {why}", case.name));
            continue;
        }
        let fail = |what: String| format!("case {} ({}): {what}", case.name, case.file);
        match case.load() {
            Err(e) => sum.failures.push(fail(e.to_string())),
            Ok(None) => sum.skipped.push(format!(
                "{}: Istio's corpus (../shared/corpus) is not here",
                case.name
            )),
            Ok(Some(hop)) => {
                match runner.run(&hop) {
                    Ok(d) if d.is_empty() => {}
                    Ok(d) => sum.failures.push(fail(d.join("\n  "))),
                    Err(e) => sum.failures.push(fail(e.to_string())),
                }
                sum.ran += 1;
            }
        }
    }
    sum
}

/// The concrete evaluator: [`Simulator::hop`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Evaluator;

impl Runner for Evaluator {
    fn engine(&self) -> Engine {
        Engine::Evaluator
    }

    fn run(&mut self, hop: &Loaded<'_>) -> Result<Vec<String>, CaseError> {
        let case = hop.case;
        let sim = Simulator::new(&hop.rs, case.pod.clone(), case.profile.clone());
        let h = sim.hop(&case.connection);
        let mut out = case
            .expected
            .differences(&h.matched, h.delivered_to, h.original_dst);
        if !h.undecided.is_empty() {
            let rules: Vec<String> = h.undecided.iter().map(show_hit).collect();
            out.push(format!(
                "the evaluator cannot decide {} (taken as not matching): say so in `skip.evaluator`",
                rules.join(", ")
            ));
        }
        Ok(out)
    }
}

/// The SMT hop encoding with the packet fixed ([`crate::smt::agree::fixed_hop`]): the
/// connection's first packet (as [`Simulator::first_packet`] routes it) through the encoding of
/// the ruleset with the profile's names resolved, its terms read in an empty model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smt;

impl Runner for Smt {
    fn engine(&self) -> Engine {
        Engine::Smt
    }

    fn run(&mut self, hop: &Loaded<'_>) -> Result<Vec<String>, CaseError> {
        let case = hop.case;
        let rs = case.profile.resolve_names(&hop.rs);
        let sim = Simulator::new(&rs, case.pod.clone(), case.profile.clone());
        let (entry, pkt) = sim.first_packet(&case.connection);
        let got = crate::smt::agree::fixed_hop(&rs, (&case.pod, &case.profile), entry, pkt)
            .map_err(CaseError::Smt)?;
        Ok(case.expected.differences(
            &got.hits,
            got.delivery(&case.profile),
            SocketAddr::new(pkt.dst, pkt.dport),
        ))
    }
}

/// How many flows the kernel runner runs before it reads the kernel's trace.
const BATCH: usize = 10;

/// The kernel oracle: the case's flow, `repeat` times in a row, each with a source port of the
/// oracle's choosing (so that no run meets the connection-tracking entry of an earlier one), in
/// the oracle's pod with the case's ruleset loaded (after `after`, when given, was loaded and
/// exercised). It sees the rules each first packet hits, the namespace and port it arrives at
/// and, for TCP in the pod, SO_ORIGINAL_DST; not which pod ports are the proxy's, nor the
/// address a remote delivery went to.
pub struct Kernel {
    tp: TestPod,
    ports: Vec<u16>,
}

impl Kernel {
    /// The oracle's pod for `cases`, its agents run by `exe` (the `sidecar-verify` binary),
    /// listening on the ports of [`kernel::ports`], the cases' profiles' proxy ports, and every
    /// port a case goes to or is delivered to; [`CaseError::Unavailable`] when this machine
    /// cannot run the oracle ([`kernel::unavailable`]).
    pub fn new(exe: &Path, cases: &[Case]) -> Result<Kernel, CaseError> {
        if let Some(why) = kernel::unavailable() {
            return Err(CaseError::Unavailable(why));
        }
        let base = Simulator::new(&Ruleset::default(), Pod::new(&POD_IPS), Profile::istio());
        let mut ports = kernel::ports(&base, &mut SplitMix::new(5));
        for c in cases {
            ports.push(c.connection.dport);
            ports.extend(&c.profile.proxy_ports);
            match c.expected.delivery {
                Delivery::Listener(p) | Delivery::App(p) => ports.push(p),
                Delivery::Remote(a) => ports.push(a.port()),
                Delivery::Dropped => {}
            }
        }
        ports.sort_unstable();
        ports.dedup();
        let tp = TestPod::create_with(exe, &ports)?;
        Ok(Kernel { tp, ports })
    }

    /// Why the oracle cannot run `case`, if it cannot: its pod is not the oracle's, or its
    /// connection is one the oracle cannot open ([`kernel::unsupported`]).
    pub fn cannot_run(case: &Case) -> Option<String> {
        if case.pod != Pod::new(&POD_IPS) {
            return Some("the case's pod is not the oracle's (10.1.0.5, fd00::5)".into());
        }
        kernel::unsupported(&case.connection)
    }

    /// Runs the case's flow `repeat` times in a row over its ruleset (once `after` was loaded
    /// and exercised, when given); what the kernel did with each run.
    pub fn observe(&mut self, hop: &Loaded<'_>) -> Result<Runs, CaseError> {
        let case = hop.case;
        if let Some(why) = Kernel::cannot_run(case) {
            return Err(CaseError::NotForKernel(why));
        }
        if let Some(first) = &hop.after {
            // Loaded and exercised; how it fares is not this case's business.
            let s0 = Simulator::new(first, case.pod.clone(), case.profile.clone());
            let f0 = kernel::random_flows(&s0, &self.ports, 20, &mut SplitMix::new(1));
            kernel::run(&mut self.tp, &s0, &f0, BATCH)?;
        }
        self.tp.load(&hop.rs)?;
        let flows: Vec<Connection> = (0..case.repeat)
            .map(|_| Connection {
                sport: self.tp.next_sport(),
                ..case.connection
            })
            .collect();
        let mut out = Runs {
            runs: Vec::new(),
            strays: Vec::new(),
        };
        for chunk in flows.chunks(BATCH) {
            let batch = self.tp.observe(chunk)?;
            out.runs.extend(
                chunk
                    .iter()
                    .zip(batch.flows)
                    .map(|(c, (obs, hits))| (*c, obs, hits)),
            );
            out.strays.extend(batch.strays);
        }
        Ok(out)
    }
}

/// What the kernel did with the runs of a case ([`Kernel::observe`]).
#[derive(Debug, Clone)]
pub struct Runs {
    /// Each run: the flow (with the source port the oracle gave it), where it was delivered, and
    /// the rules its first packet hit.
    pub runs: Vec<(Connection, Observed, Vec<KernelHit>)>,
    /// Traced packets with rule hits that no run sent.
    pub strays: Vec<Stray>,
}

impl Runner for Kernel {
    fn engine(&self) -> Engine {
        Engine::Kernel
    }

    fn run(&mut self, hop: &Loaded<'_>) -> Result<Vec<String>, CaseError> {
        let case = hop.case;
        let c = &case.connection;
        let family = if c.dst.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        let want = Expectation::new(
            family,
            &case.expected.hits,
            case.expected.delivery,
            case.expected
                .original_dst
                .unwrap_or(SocketAddr::new(c.dst, c.dport)),
        );
        // Each difference once, with the number of runs it showed in.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let runs = self.observe(hop)?;
        for (flow, obs, hits) in &runs.runs {
            for d in kernel::compare(flow, &want, obs, hits) {
                let text = format!("{}: expected {}; kernel {}", d.what, d.model, d.kernel);
                *seen.entry(text).or_default() += 1;
            }
        }
        let mut out: Vec<String> = seen
            .into_iter()
            .map(|(d, n)| format!("{d} (in {n} of {} runs)", case.repeat))
            .collect();
        out.extend(runs.strays.iter().map(|s| {
            let d = kernel::stray(s);
            format!("{}: {}", d.what, d.kernel)
        }));
        Ok(out)
    }
}
