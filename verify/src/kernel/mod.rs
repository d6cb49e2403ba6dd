//! The kernel oracle: the model against Linux netfilter, flow by flow.
//!
//! An isolated pod: two network namespaces made for the run, the pod (lo, eth0 10.1.0.5/24,
//! default route via the peer) and the peer (eth0 10.1.0.99/24, which also answers for the
//! service and remote ranges beyond it on its lo). Both ends of the veth pair are created inside
//! the namespaces; nothing touches the host's interfaces, and traffic only ever crosses that pair
//! and the namespaces' loopbacks. The ruleset is loaded into the pod as its canonical print
//! (which the test suite shows the kernel holds exactly as parsed).
//!
//! Each flow runs as a child process with the flow's uid and gid (supplementary groups
//! cleared); listeners in both namespaces on every port the run uses record which socket got the
//! flow and its SO_ORIGINAL_DST. The kernel reports the rules a flow's first packet hits through
//! nftables tracing ([`trace`]): the pod has a table of the oracle's own that sets `nftrace` on
//! every connection's first packet, before any iptables table sees it, and the pod's agent
//! collects the kernel's trace events, which name each rule whose matches all held by its
//! nftables handle. After each batch of flows the events are read, the handles mapped back to
//! table, chain and rule number, and the hits given to flows by source port (the oracle picks a
//! unique one per flow).
//!
//! What is compared, per flow (its first connection, IPv4 and IPv6):
//! * rule hits: the rules the kernel reports for the flow's first packet, in order, over every
//!   table and every hook it crossed (OUTPUT, POSTROUTING and, looped back, PREROUTING and INPUT;
//!   or PREROUTING and INPUT from outside), each with its family and hook, equal the model's
//!   `matched` list exactly;
//! * delivery: the same side (pod or peer) and port, and in the pod the same original
//!   destination.
//!
//! A traced packet no flow of the batch sent, with rule hits, is reported too. Flows whose model
//! hop has undecidable rules are skipped and counted.
//!
//! The pod and how a flow runs in it are in `pod.rs` ([`TestPod`]), the flows a run sends in
//! `flows.rs` ([`random_flows`]); this module compares ([`compare`], [`run`]).

pub mod agent;
mod flows;
mod pod;
pub mod trace;

use std::net::SocketAddr;
use std::time::Instant;

use serde::Serialize;
use sidecar_model::pod::{Connection, Delivery, HopReport, RuleRef, Simulator};
use sidecar_model::{Family, Ruleset};

pub use flows::{journey_flows, ports, random_flows, SplitMix};
pub use pod::{
    install_interrupt_cleanup, unavailable, unsupported, Batch, Observed, Side, TestPod,
    PEER_RANGES, PEER_RANGES_V6, PEER_V4, PEER_V6, POD_IPS, UDP_WAIT,
};
use trace::KernelHit;

/// Why the oracle could not run.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    /// Setting up the namespaces failed.
    #[error("cannot set up the pod: {0}")]
    Setup(String),
    /// The kernel refused the ruleset.
    #[error("iptables-restore refused the ruleset: {0}")]
    Load(String),
    /// An agent stopped answering.
    #[error("the agent in the {0} namespace stopped answering")]
    Agent(&'static str),
    /// The kernel's trace events could not be read, or some were lost.
    #[error("nftables tracing: {0}")]
    Trace(String),
    /// A flow the oracle cannot open yet.
    #[error("the kernel oracle cannot run this flow yet: {0}")]
    Unsupported(String),
}

/// One disagreement between the model and the kernel.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    /// The flow.
    pub flow: Connection,
    /// What differs.
    pub what: String,
    /// The model's side of it.
    pub model: String,
    /// The kernel's side of it.
    pub kernel: String,
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OracleReport {
    /// Flows compared.
    pub compared: usize,
    /// Flows skipped because the model's hop had undecidable rules.
    pub skipped_undecided: usize,
    /// Flows skipped because the oracle cannot open them ([`unsupported`]).
    pub skipped_unsupported: usize,
    /// Disagreements found.
    pub disagreements: Vec<Disagreement>,
    /// Flows per second over the whole run.
    pub flows_per_second: f64,
}

/// What a flow's first connection should do, in the terms the kernel is asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The rules its first packet hits, in order, each with its family.
    pub hits: Vec<KernelHit>,
    /// The namespace and port it is delivered to; none when it is dropped.
    pub delivered: Option<(Side, u16)>,
    /// The destination the receiving socket sees as original (compared for TCP in the pod).
    pub original_dst: SocketAddr,
}

impl Expectation {
    /// The hits `hits` (all of `family`), the delivery and original destination of a hop.
    pub fn new(
        family: Family,
        hits: &[RuleRef],
        delivery: Delivery,
        original_dst: SocketAddr,
    ) -> Expectation {
        Expectation {
            hits: hits.iter().map(|r| (family, r.clone())).collect(),
            delivered: match delivery {
                Delivery::Listener(p) | Delivery::App(p) => Some((Side::Pod, p)),
                Delivery::Remote(a) => Some((Side::Peer, a.port())),
                Delivery::Dropped => None,
            },
            original_dst,
        }
    }

    /// The model's expectation for a hop.
    pub fn of_hop(h: &HopReport) -> Expectation {
        Expectation::new(
            h.packet.family(),
            &h.matched,
            h.delivered_to,
            h.original_dst,
        )
    }
}

fn show(hits: &[KernelHit]) -> String {
    if hits.is_empty() {
        return "(none)".into();
    }
    hits.iter()
        .map(|(f, r)| {
            let f = if *f == Family::Ipv6 { "ip6 " } else { "" };
            format!("{}: {f}{} {} {}", r.hook, r.table, r.chain, r.rule)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn show_delivery(d: &Option<(Side, u16)>) -> String {
    match d {
        Some((Side::Pod, p)) => format!("pod port {p}"),
        Some((Side::Peer, p)) => format!("peer port {p}"),
        None => "nowhere".into(),
    }
}

/// Compares what the kernel did with flow `c` (`obs`; `hits`, the rules it traced for the
/// flow's first packet) with `want`; the disagreements, `want`'s side in their `model`.
pub fn compare(
    c: &Connection,
    want: &Expectation,
    obs: &Observed,
    hits: &[KernelHit],
) -> Vec<Disagreement> {
    let mut out = Vec::new();
    if want.hits != hits {
        out.push(Disagreement {
            flow: *c,
            what: "rule hits of the first packet".into(),
            model: show(&want.hits),
            kernel: show(hits),
        });
    }
    if want.delivered != obs.delivered {
        out.push(Disagreement {
            flow: *c,
            what: "delivery".into(),
            model: show_delivery(&want.delivered),
            kernel: show_delivery(&obs.delivered),
        });
    } else if let (Some((Side::Pod, _)), Some(k)) = (obs.delivered, obs.original_dst) {
        if c.proto == 6 && k != want.original_dst {
            out.push(Disagreement {
                flow: *c,
                what: "original destination".into(),
                model: want.original_dst.to_string(),
                kernel: k.to_string(),
            });
        }
    }
    out
}

/// A disagreement about a traced packet that no flow of its batch sent.
pub fn stray(s: &trace::Stray) -> Disagreement {
    let p = s.packet;
    Disagreement {
        flow: Connection {
            proto: p.proto,
            src: Some(p.src),
            dst: p.dst,
            sport: p.sport,
            dport: p.dport,
            uid: 0,
            gid: 0,
            from_outside: false,
            mark: 0,
            iface: None,
        },
        what: "a traced packet no flow of its batch sent".into(),
        model: "(no such flow)".into(),
        kernel: show(&s.hits),
    }
}

/// Runs `flows` through the kernel and the model, reading the kernel's trace every `batch` flows.
pub fn run(
    tp: &mut TestPod,
    sim: &Simulator,
    flows: &[Connection],
    batch: usize,
) -> Result<OracleReport, OracleError> {
    run_with(tp, sim, sim.engine().ruleset(), flows, batch)
}

/// [`run`] with `kernel_rs` loaded into the kernel instead of the model's ruleset: how the
/// oracle's own tests show that it notices when the two differ.
pub fn run_with(
    tp: &mut TestPod,
    sim: &Simulator,
    kernel_rs: &Ruleset,
    flows: &[Connection],
    batch: usize,
) -> Result<OracleReport, OracleError> {
    tp.load(kernel_rs)?;
    let started = Instant::now();
    let mut report = OracleReport::default();
    let mut todo: Vec<(Connection, HopReport)> = Vec::new();
    for c in flows {
        // The oracle picks source ports (see `next_sport`): no flow meets the conntrack entry of
        // an earlier one, the model knows the port, and the trace events of a batch go to their
        // flows by it.
        if unsupported(c).is_some() {
            report.skipped_unsupported += 1;
            continue;
        }
        let mut c = *c;
        c.sport = tp.next_sport();
        let h = sim.hop(&c);
        if h.undecided.is_empty() {
            todo.push((c, h));
        } else {
            report.skipped_undecided += 1;
        }
    }
    for chunk in todo.chunks(batch.max(1)) {
        let flows: Vec<Connection> = chunk.iter().map(|(c, _)| *c).collect();
        let batch = tp.observe(&flows)?;
        for ((c, hop), (obs, hits)) in chunk.iter().zip(&batch.flows) {
            let want = Expectation::of_hop(hop);
            report.disagreements.extend(compare(c, &want, obs, hits));
        }
        report.disagreements.extend(batch.strays.iter().map(stray));
        report.compared += chunk.len();
    }
    let secs = started.elapsed().as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "a rate for people to read")]
    let n = report.compared as f64;
    report.flows_per_second = if secs > 0.0 { n / secs } else { 0.0 };
    Ok(report)
}
