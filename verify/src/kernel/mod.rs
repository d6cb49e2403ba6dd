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
//! flow and its SO_ORIGINAL_DST. Per-rule packet counters are read before and after each batch
//! of flows; a batch whose counters do not add up to the model's prediction is re-run flow by
//! flow to find the culprit.
//!
//! What is compared, per flow (its first connection, IPv4):
//! * nat rules: the kernel's counter deltas equal the model's hits exactly (nat counts only a
//!   connection's first packet, which is what the model follows);
//! * other tables: every rule the model's first packet hits moved (the kernel also counts the
//!   connection's later packets, which the model does not follow yet);
//! * delivery: the same side (pod or peer) and port, and in the pod the same original
//!   destination.
//!
//! Rulesets with TPROXY are skipped with a message (the pod here has no transparent listeners
//! and no policy routing), as are flows whose model hop has undecidable rules.

pub mod agent;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use sidecar_model::pod::{Connection, Delivery, HopReport, Simulator};
use sidecar_model::print::print_family;
use sidecar_model::{parse, Family, Ruleset, TableKind, Target};

use crate::netns::Netns;

/// A rule by family, table, chain and 1-based number.
pub type RuleKey = (Family, TableKind, String, u32);
/// Packets counted per rule.
pub type Counts = BTreeMap<RuleKey, u64>;

/// Namespaces alive in this process, deleted on Ctrl-C.
static LIVE: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

fn live() -> &'static Mutex<Vec<String>> {
    LIVE.get_or_init(|| Mutex::new(Vec::new()))
}

/// Installs a handler for Ctrl-C, SIGTERM and SIGHUP that deletes this process's namespaces and
/// exits 130. Called by every [`TestPod`]; only the first call installs it.
pub fn install_interrupt_cleanup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(install);
}

fn install() {
    let _ = ctrlc::set_handler(|| {
        if let Ok(v) = live().lock() {
            for ns in v.iter() {
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
        }
        std::process::exit(130);
    });
}

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
}

/// Which namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The pod.
    Pod,
    /// The peer beyond eth0.
    Peer,
}

/// Where the kernel delivered a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// Which namespace's listener got it, and on which port; none when nobody did.
    pub delivered: Option<(Side, u16)>,
    /// SO_ORIGINAL_DST as the listener saw it (TCP only).
    pub original_dst: Option<SocketAddr>,
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
    /// Disagreements found.
    pub disagreements: Vec<Disagreement>,
    /// Flows per second over the whole run.
    pub flows_per_second: f64,
}

struct Agent {
    child: Child,
    stdin: ChildStdin,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pod and its peer, with their agents.
pub struct TestPod {
    pod: Netns,
    peer: Netns,
    agents: Vec<(Side, Agent)>,
    events: Receiver<(Side, String)>,
    next_id: u64,
    sport_counter: u32,
    ports: Vec<u16>,
    sport_used: std::collections::HashMap<u16, Instant>,
    /// The `ip rule`s the current ruleset's TPROXY marks added.
    mark_rules: Vec<(Family, String)>,
}

/// The first source port the oracle gives flows.
const SPORT_FIRST: u16 = 10000;
/// How many source ports it cycles through.
const SPORT_COUNT: u32 = 51000;
/// How long before a source port is used again: longer than conntrack keeps a closed TCP
/// connection (TIME_WAIT, 120 s) or an unanswered UDP one (30 s).
const SPORT_REUSE: Duration = Duration::from_secs(130);

/// How long a sent datagram may take to reach its listener before it counts as dropped.
pub const UDP_WAIT: Duration = Duration::from_millis(150);

/// The addresses beyond the pod that the peer answers for.
pub const PEER_RANGES: &[&str] = &["10.96.0.0/12", "1.1.0.0/16", "9.9.0.0/16", "192.0.2.0/24"];
/// The IPv6 addresses beyond the pod that the peer answers for.
pub const PEER_RANGES_V6: &[&str] = &["2001:db8::/32"];
/// The pod's addresses in the oracle.
pub const POD_IPS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, 5)),
    IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5)),
];
/// The peer's IPv6 address.
pub const PEER_V6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x99));

fn ip(ns: &Netns, args: &[&str]) -> Result<(), OracleError> {
    let out = ns
        .exec("ip", args, b"")
        .map_err(|e| OracleError::Setup(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(OracleError::Setup(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl TestPod {
    /// Creates the namespaces, the veth pair, addresses and routes, and starts the agents
    /// (this very program, which must be the `sidecar-verify` binary) listening on `ports`.
    pub fn create(ports: &[u16]) -> Result<TestPod, OracleError> {
        let exe = std::env::current_exe().map_err(|e| OracleError::Setup(e.to_string()))?;
        TestPod::create_with(&exe, ports)
    }

    /// [`TestPod::create`] with the path of the `sidecar-verify` binary that runs the agents.
    pub fn create_with(exe: &std::path::Path, ports: &[u16]) -> Result<TestPod, OracleError> {
        install_interrupt_cleanup();
        let pod = Netns::create("pod").map_err(OracleError::Setup)?;
        let peer = Netns::create("peer").map_err(OracleError::Setup)?;
        if let Ok(mut v) = live().lock() {
            v.push(pod.name().to_string());
            v.push(peer.name().to_string());
        }
        // Both ends are made inside the namespaces: no name in the host's namespace.
        let out = Command::new("ip")
            .args([
                "link",
                "add",
                "eth0",
                "netns",
                pod.name(),
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                peer.name(),
            ])
            .output()
            .map_err(|e| OracleError::Setup(e.to_string()))?;
        if !out.status.success() {
            return Err(OracleError::Setup(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        for ns in [&pod, &peer] {
            ip(ns, &["link", "set", "lo", "up"])?;
            ip(ns, &["link", "set", "eth0", "up"])?;
        }
        ip(&pod, &["addr", "add", "10.1.0.5/24", "dev", "eth0"])?;
        ip(&peer, &["addr", "add", "10.1.0.99/24", "dev", "eth0"])?;
        ip(&pod, &["route", "add", "default", "via", "10.1.0.99"])?;
        for r in PEER_RANGES {
            ip(&peer, &["route", "add", "local", r, "dev", "lo"])?;
        }
        // IPv6: addresses without duplicate detection (usable at once), ::6 on the pod's lo as
        // Istio adds it for the inbound passthrough.
        ip(
            &pod,
            &["-6", "addr", "add", "fd00::5/64", "dev", "eth0", "nodad"],
        )?;
        ip(
            &peer,
            &["-6", "addr", "add", "fd00::99/64", "dev", "eth0", "nodad"],
        )?;
        ip(
            &pod,
            &["-6", "addr", "add", "::6/128", "dev", "lo", "nodad"],
        )?;
        ip(&pod, &["-6", "route", "add", "default", "via", "fd00::99"])?;
        for r in PEER_RANGES_V6 {
            ip(&peer, &["-6", "route", "add", "local", r, "dev", "lo"])?;
        }
        // Table 133: everything is local (what packets TPROXY marked are routed by).
        ip(
            &pod,
            &[
                "-4", "route", "add", "local", "default", "dev", "lo", "table", "133",
            ],
        )?;
        ip(
            &pod,
            &[
                "-6", "route", "add", "local", "default", "dev", "lo", "table", "133",
            ],
        )?;
        let (tx, rx) = channel();
        let mut agents = Vec::new();
        for (side, ns) in [(Side::Pod, &pod), (Side::Peer, &peer)] {
            agents.push((side, start_agent(exe, ns, side, ports, tx.clone())?));
        }
        let mut tp = TestPod {
            pod,
            peer,
            agents,
            events: rx,
            next_id: 0,
            sport_counter: 0,
            ports: ports.to_vec(),
            sport_used: std::collections::HashMap::new(),
            mark_rules: Vec::new(),
        };
        // Wait until both agents listen.
        let mut ready = 0;
        while ready < 2 {
            match tp.events.recv_timeout(Duration::from_secs(10)) {
                Ok((_, l)) if l == "ready" => ready += 1,
                Ok(_) => {}
                Err(_) => return Err(OracleError::Setup("the agents did not start".into())),
            }
        }
        tp.next_id = 1;
        Ok(tp)
    }

    /// Loads `rs` into the pod (its canonical print, both families), with the policy routes its
    /// TPROXY marks need (as a mesh installs them: marked packets are delivered locally).
    pub fn load(&mut self, rs: &Ruleset) -> Result<(), OracleError> {
        for (fam, mark) in std::mem::take(&mut self.mark_rules) {
            let f = if fam == Family::Ipv4 { "-4" } else { "-6" };
            ip(
                &self.pod,
                &[f, "rule", "del", "fwmark", &mark, "lookup", "133"],
            )?;
        }
        for fam in [Family::Ipv4, Family::Ipv6] {
            let f = if fam == Family::Ipv4 { "-4" } else { "-6" };
            for mark in tproxy_marks(rs, fam) {
                ip(
                    &self.pod,
                    &[f, "rule", "add", "fwmark", &mark, "lookup", "133"],
                )?;
                self.mark_rules.push((fam, mark));
            }
        }
        for (fam, tool) in [
            (Family::Ipv4, "iptables-restore"),
            (Family::Ipv6, "ip6tables-restore"),
        ] {
            // iptables-restore replaces only the tables it is given: every table the ruleset
            // lacks is given empty, so nothing an earlier ruleset loaded stays behind.
            let mut text = print_family(rs, fam);
            for kind in TableKind::SAVE_ORDER {
                if rs.table(fam, kind).is_none() {
                    text.push_str(&format!("*{}\nCOMMIT\n", kind.name()));
                }
            }
            let out = self
                .pod
                .exec(tool, &[], text.as_bytes())
                .map_err(|e| OracleError::Load(e.to_string()))?;
            if !out.status.success() {
                return Err(OracleError::Load(
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ));
            }
        }
        Ok(())
    }

    /// The pod's per-rule packet counters, both families.
    pub fn counters(&self) -> Result<Counts, OracleError> {
        let mut m = BTreeMap::new();
        for (fam, tool) in [
            (Family::Ipv4, "iptables-save"),
            (Family::Ipv6, "ip6tables-save"),
        ] {
            let out = self
                .pod
                .exec(tool, &["-c"], b"")
                .map_err(|e| OracleError::Setup(e.to_string()))?;
            let parsed = parse(tool, &out.stdout).map_err(|e| OracleError::Setup(e.to_string()))?;
            for t in parsed.ruleset.tables(fam) {
                for c in &t.chains {
                    for (i, r) in c.rules.iter().enumerate() {
                        let n = u32::try_from(i + 1).unwrap_or(0);
                        m.insert((fam, t.kind, c.name.clone(), n), r.counters.packets);
                    }
                }
            }
        }
        Ok(m)
    }

    /// The source port of the next flow.
    pub fn next_sport(&mut self) -> u16 {
        loop {
            self.sport_counter = self.sport_counter.wrapping_add(1);
            let p = SPORT_FIRST + u16::try_from(self.sport_counter % SPORT_COUNT).unwrap_or(0);
            // Never a port a listener holds: the client could not bind it.
            if self.ports.contains(&p) {
                continue;
            }
            // Never a port whose last flow's conntrack entry may still live (TCP TIME_WAIT is
            // 120 s): a new flow would meet it. Waits only past ~380 flows/s sustained.
            if let Some(last) = self.sport_used.get(&p) {
                let age = last.elapsed();
                if age < SPORT_REUSE {
                    std::thread::sleep(SPORT_REUSE - age);
                }
            }
            self.sport_used.insert(p, Instant::now());
            return p;
        }
    }

    /// Runs one flow and reports where the kernel delivered it.
    pub fn run_flow(&mut self, c: &Connection) -> Result<Observed, OracleError> {
        let id = self.next_id;
        self.next_id += 1;
        let side = if c.from_outside {
            Side::Peer
        } else {
            Side::Pod
        };
        let (uid, gid) = if c.from_outside {
            (0, 0)
        } else {
            (c.uid, c.gid)
        };
        let src = if c.from_outside {
            "-".to_string()
        } else {
            c.src.map_or("-".into(), |s| s.to_string())
        };
        let proto = if c.proto == 17 { "udp" } else { "tcp" };
        let line = format!(
            "connect {id} {proto} {uid} {gid} {src} {} {} {}\n",
            c.sport, c.dst, c.dport
        );
        let agent = self
            .agents
            .iter_mut()
            .find(|(s, _)| *s == side)
            .map(|(_, a)| a)
            .ok_or(OracleError::Agent("pod"))?;
        agent
            .stdin
            .write_all(line.as_bytes())
            .and_then(|()| agent.stdin.flush())
            .map_err(|_| OracleError::Agent(if side == Side::Pod { "pod" } else { "peer" }))?;
        let mut obs = Observed {
            delivered: None,
            original_dst: None,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut done: Option<i32> = None;
        let tag = id.to_string();
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            // Once the client is done, an accepted line is already on its way (it was written
            // before the answer the client waited for): wait a little for it, no more.
            // A datagram has no answer: once sent, wait a little for the listener's line, which
            // does not come when the datagram was dropped.
            let wait = match done {
                Some(0) if c.proto == 17 => wait.min(UDP_WAIT),
                Some(0) => wait.min(Duration::from_secs(1)),
                Some(_) => Duration::ZERO,
                None => wait,
            };
            let ev = match self.events.recv_timeout(wait) {
                Ok(ev) => ev,
                Err(_) if done.is_some() => break,
                Err(_) => return Err(OracleError::Agent("pod")),
            };
            let f: Vec<&str> = ev.1.split_whitespace().collect();
            match f.as_slice() {
                ["done", i, code] if *i == tag => {
                    done = Some(code.parse().unwrap_or(3));
                    if obs.delivered.is_some() {
                        break;
                    }
                }
                ["accepted", i, _, port, orig] if *i == tag => {
                    obs.delivered = Some((ev.0, port.parse().unwrap_or(0)));
                    obs.original_dst = orig.parse().ok();
                    if done.is_some() {
                        break;
                    }
                }
                _ => {}
            }
        }
        Ok(obs)
    }
}

fn start_agent(
    exe: &std::path::Path,
    ns: &Netns,
    side: Side,
    ports: &[u16],
    tx: Sender<(Side, String)>,
) -> Result<Agent, OracleError> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns.name()])
        .arg(exe)
        .arg("__agent");
    for p in ports {
        cmd.arg(p.to_string());
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| OracleError::Setup(format!("cannot start the agent: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| OracleError::Setup("agent without stdout".into()))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| OracleError::Setup("agent without stdin".into()))?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((side, line)).is_err() {
                break;
            }
        }
    });
    Ok(Agent { child, stdin })
}

impl Drop for TestPod {
    fn drop(&mut self) {
        self.agents.clear();
        if let Ok(mut v) = live().lock() {
            v.retain(|n| n != self.pod.name() && n != self.peer.name());
        }
    }
}

/// The model's expectation for a flow's first connection.
fn model_delivery(h: &HopReport) -> Option<(Side, u16)> {
    match h.delivered_to {
        Delivery::Listener(p) | Delivery::App(p) => Some((Side::Pod, p)),
        Delivery::Remote(a) => Some((Side::Peer, a.port())),
        Delivery::Dropped => None,
    }
}

/// The marks TPROXY rules of `family` set, as `ip rule` writes them (`VALUE/MASK`).
fn tproxy_marks(rs: &Ruleset, family: Family) -> Vec<String> {
    let mut v: Vec<String> = rs
        .tables(family)
        .iter()
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
        .filter_map(|r| match &r.target {
            Some(Target::Tproxy { mark, .. }) if mark.mask != 0 => {
                Some(format!("0x{:x}/0x{:x}", mark.value, mark.mask))
            }
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The hits a hop's model predicts per rule: nat hits counted, other tables as a set.
fn predicted(h: &HopReport) -> (Counts, Vec<RuleKey>) {
    let mut nat = BTreeMap::new();
    let mut other = Vec::new();
    let fam = h.packet.family();
    for r in &h.matched {
        let key = (fam, r.table, r.chain.clone(), r.rule);
        if r.table == TableKind::Nat {
            *nat.entry(key).or_insert(0) += 1;
        } else if !other.contains(&key) {
            other.push(key);
        }
    }
    (nat, other)
}

fn delta(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .filter_map(|(k, a)| {
            let d = a.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// The nat rules of `m`.
fn nat_only(m: &Counts) -> Counts {
    m.iter()
        .filter(|(k, _)| k.1 == TableKind::Nat)
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn show(m: &Counts) -> String {
    if m.is_empty() {
        return "(none)".into();
    }
    m.iter()
        .map(|((f, t, c, r), n)| {
            let f = if *f == Family::Ipv6 { "ip6 " } else { "" };
            if *n == 1 {
                format!("{f}{t} {c} {r}")
            } else {
                format!("{f}{t} {c} {r} ×{n}")
            }
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

/// Compares one flow's kernel outcome with the model.
///
/// `moved` holds the counter deltas around this flow alone when `check_nat`; around a whole batch
/// when not (the batch's nat counts are then compared as a sum by the caller).
fn compare_flow(
    c: &Connection,
    hop: &HopReport,
    obs: &Observed,
    moved: &Counts,
    check_nat: bool,
    out: &mut Vec<Disagreement>,
) {
    let (nat, other) = predicted(hop);
    let nat_moved = nat_only(moved);
    if check_nat && nat != nat_moved {
        out.push(Disagreement {
            flow: *c,
            what: "nat rule hits".into(),
            model: show(&nat),
            kernel: show(&nat_moved),
        });
    }
    let missing: Vec<String> = other
        .iter()
        .filter(|k| !moved.contains_key(*k))
        .map(|(_, t, ch, r)| format!("{t} {ch} {r}"))
        .collect();
    if !missing.is_empty() {
        out.push(Disagreement {
            flow: *c,
            what: "rules the model hits that did not move".into(),
            model: missing.join(", "),
            kernel: "(counter unchanged)".into(),
        });
    }
    let want = model_delivery(hop);
    if want != obs.delivered {
        out.push(Disagreement {
            flow: *c,
            what: "delivery".into(),
            model: show_delivery(&want),
            kernel: show_delivery(&obs.delivered),
        });
    } else if let (Some((Side::Pod, _)), Some(k)) = (obs.delivered, obs.original_dst) {
        if c.proto == 6 && k != hop.original_dst {
            out.push(Disagreement {
                flow: *c,
                what: "original destination".into(),
                model: hop.original_dst.to_string(),
                kernel: k.to_string(),
            });
        }
    }
}

/// Runs `flows` through the kernel and the model, in batches of `batch` flows per counter read.
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
        // an earlier one, and the model knows the port.
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
        let before = tp.counters()?;
        let mut observed = Vec::with_capacity(chunk.len());
        for (c, _) in chunk {
            observed.push(tp.run_flow(c)?);
        }
        let after = tp.counters()?;
        let moved = delta(&before, &after);
        // The batch adds up when the nat counts sum exactly, every other rule the model hits
        // moved, and every flow arrived where the model says.
        let mut nat_sum: Counts = BTreeMap::new();
        let mut ok = true;
        for ((c, hop), obs) in chunk.iter().zip(&observed) {
            for (k, n) in predicted(hop).0 {
                *nat_sum.entry(k).or_insert(0) += n;
            }
            let mut found = Vec::new();
            compare_flow(c, hop, obs, &moved, false, &mut found);
            ok &= found.is_empty();
        }
        ok &= nat_sum == nat_only(&moved);
        if !ok {
            // Find the flows: one by one, with counters around each.
            for (c, _) in chunk {
                // A fresh source port: the batch's connection may still be in TIME_WAIT.
                let mut c = *c;
                c.sport = tp.next_sport();
                let hop = sim.hop(&c);
                let before = tp.counters()?;
                let obs = tp.run_flow(&c)?;
                let after = tp.counters()?;
                compare_flow(
                    &c,
                    &hop,
                    &obs,
                    &delta(&before, &after),
                    true,
                    &mut report.disagreements,
                );
            }
        }
        report.compared += chunk.len();
    }
    let secs = started.elapsed().as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "a rate for people to read")]
    let n = report.compared as f64;
    report.flows_per_second = if secs > 0.0 { n / secs } else { 0.0 };
    Ok(report)
}

/// A small deterministic generator (SplitMix64), so that `--seed S` gives the same flows on every
/// machine and version.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// Seeded.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// One of `v`.
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        let i = usize::try_from(self.below(v.len() as u64)).ok()?;
        v.get(i).copied()
    }
}

/// The ports a run listens on: the profile's, common service ports, and a few random ones.
pub fn ports(sim: &Simulator, rng: &mut SplitMix) -> Vec<u16> {
    let mut v: Vec<u16> = sim.profile.proxy_ports.clone();
    v.extend([
        22, 53, 80, 443, 8080, 15012, 32000, 31000, 4000, 5000, 6000, 7000, 1111, 2222, 3333, 4444,
        5555, 6666,
    ]);
    for _ in 0..6 {
        v.push(u16::try_from(1024 + rng.below(60000)).unwrap_or(9999));
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// `n` random flows over the pod's identities, destinations and `ports`; a quarter IPv6 when
/// the pod has an IPv6 address.
pub fn random_flows(
    sim: &Simulator,
    ports: &[u16],
    n: usize,
    rng: &mut SplitMix,
) -> Vec<Connection> {
    let pod_ip4 = sim
        .pod
        .primary(Family::Ipv4)
        .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 5)));
    let pod_ip6 = sim.pod.primary(Family::Ipv6);
    let pf = &sim.profile;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let v6 = pod_ip6.filter(|_| rng.below(4) == 0);
        let pod_ip = v6.unwrap_or(pod_ip4);
        let proto = if rng.below(5) == 0 { 17 } else { 6 };
        let dport = if proto == 17 && rng.below(2) == 0 {
            53
        } else {
            rng.pick(ports).unwrap_or(80)
        };
        if rng.below(4) == 0 {
            out.push(Connection {
                proto,
                src: Some(if v6.is_some() {
                    PEER_V6
                } else {
                    pf.remote_peer
                }),
                dst: pod_ip,
                sport: 40000,
                dport,
                uid: 0,
                gid: 0,
                from_outside: true,
            });
            continue;
        }
        let r = u32::try_from(rng.below(2_000_000_000)).unwrap_or(7);
        let (uid, gid) = match rng.below(7) {
            0 => (0, 0),
            1 | 2 => (pf.app_uid, pf.app_gid),
            3 => (pf.proxy_uid, pf.proxy_gid),
            4 => (1_000_670_000, pf.proxy_gid),
            5 => (pf.proxy_uid, r),
            _ => (r, r / 2),
        };
        let byte = |rng: &mut SplitMix| u8::try_from(rng.below(256)).unwrap_or(1);
        let (dst, local) = match (rng.below(5), v6) {
            (0, _) => (pod_ip, true),
            (1, None) => (IpAddr::V4(Ipv4Addr::LOCALHOST), true),
            (2, None) => (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)), true),
            (_, Some(_)) if rng.below(3) == 0 => (IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), true),
            (_, Some(_)) if rng.below(3) == 0 => (PEER_V6, false),
            (_, Some(_)) => {
                let a = u16::try_from(rng.below(65536)).unwrap_or(1);
                (
                    IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, a, 0, 0, 0, 1)),
                    false,
                )
            }
            (_, None) => {
                let (a, b) = (byte(rng), byte(rng));
                let d = match rng.below(4) {
                    0 => Ipv4Addr::new(10, 1, 0, 99),
                    1 => Ipv4Addr::new(10, 96, a, b),
                    2 => Ipv4Addr::new(1, 1, a, b),
                    _ => Ipv4Addr::new(9, 9, a, b),
                };
                (IpAddr::V4(d), false)
            }
        };
        // The passthrough source is bound only for local destinations (a loopback source cannot
        // leave by eth0).
        let passthrough = if v6.is_some() {
            IpAddr::V6(pf.passthrough_v6)
        } else {
            IpAddr::V4(pf.passthrough_v4)
        };
        let src = (local && rng.below(3) == 0).then_some(passthrough);
        out.push(Connection {
            proto,
            src,
            dst,
            sport: 40000,
            dport,
            uid,
            gid,
            from_outside: false,
        });
    }
    out
}
