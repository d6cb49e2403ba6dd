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

pub mod agent;
pub mod trace;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use sidecar_model::pod::{Connection, Delivery, HopReport, Simulator};
use sidecar_model::print::print_family;
use sidecar_model::{Family, Ruleset, TableKind, Target};

use crate::netns::Netns;
use trace::{HandleMap, KernelHit, TraceEvent};

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
                delete_netns(ns);
            }
        }
        std::process::exit(130);
    });
}

/// Deletes the namespace `name`, again while `ip netns del` fails and the name is still there.
///
/// `ip` runs in a process group of its own: a Ctrl-C (or `timeout -s INT`, which signals this
/// process and then its group) reaching it halfway would leave the namespace behind.
fn delete_netns(name: &str) {
    use std::os::unix::process::CommandExt;
    for _ in 0..20 {
        let deleted = Command::new("ip")
            .args(["netns", "del", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .status()
            .is_ok_and(|s| s.success());
        if deleted || !std::path::Path::new("/run/netns").join(name).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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
    /// The kernel's trace events could not be read, or some were lost.
    #[error("nftables tracing: {0}")]
    Trace(String),
    /// A flow the oracle cannot open yet.
    #[error("the kernel oracle cannot run this flow yet: {0}")]
    Unsupported(String),
}

/// Why the kernel oracle cannot run on this machine: what [`crate::netns::unavailable`] says,
/// or no `nft` (nftables), which sets up the tracing, or an iptables that is not iptables-nft
/// (the tracing names nftables rules).
pub fn unavailable() -> Option<String> {
    crate::netns::unavailable().or_else(tracing_unavailable)
}

fn tracing_unavailable() -> Option<String> {
    let found = Command::new("sh")
        .args(["-c", "command -v nft"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        return Some("`nft` not found (install nftables)".into());
    }
    let version = Command::new("iptables")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    (!version.contains("nf_tables")).then(|| {
        format!(
            "`iptables -V` says `{}`: the oracle traces nftables rules and needs the nf_tables \
             backend (iptables-nft)",
            version.trim()
        )
    })
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
    /// Flows skipped because the oracle cannot open them ([`unsupported`]).
    pub skipped_unsupported: usize,
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
    /// The loaded ruleset's rules by nftables handle.
    handles: HandleMap,
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

/// The addresses beyond the pod that the peer answers for (169.254/16: ambient's probe address).
pub const PEER_RANGES: &[&str] = &[
    "10.96.0.0/12",
    "1.1.0.0/16",
    "9.9.0.0/16",
    "192.0.2.0/24",
    "169.254.0.0/16",
];
/// The IPv6 addresses beyond the pod that the peer answers for.
pub const PEER_RANGES_V6: &[&str] = &["2001:db8::/32"];
/// The pod's addresses in the oracle.
pub const POD_IPS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, 5)),
    IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5)),
];
/// Why the oracle cannot run `c` as it is, if it cannot: the pod has no interface but eth0 and
/// lo; the peer sends only from addresses it has (its own and the ranges it answers for); and
/// only a marked (proxy) socket binds an address that is not the pod's, transparently, its
/// answers routed back by the policy route of the ruleset's connection mark.
pub fn unsupported(c: &Connection) -> Option<String> {
    if let Some(i) = c.iface {
        return Some(format!(
            "arriving on interface {} (the pod has eth0 only)",
            i.as_str()
        ));
    }
    match c.src {
        Some(s) if c.from_outside && !peer_owns(s) => Some(format!(
            "from outside from {s}, an address the peer does not have"
        )),
        // A marked (proxy) socket binds it transparently, as ztunnel does.
        Some(s) if !c.from_outside && c.mark == 0 && !pod_owns(s) => Some(format!(
            "bound to {s}, an address that is not the pod's, without a proxy mark"
        )),
        _ => None,
    }
}

/// Whether the oracle's peer has address `a`: its own, or one of the ranges it answers for.
fn peer_owns(a: IpAddr) -> bool {
    a == PEER_V6
        || a == PEER_V4
        || PEER_RANGES
            .iter()
            .chain(PEER_RANGES_V6)
            .filter_map(|r| r.parse::<ipnet::IpNet>().ok())
            .any(|n| n.contains(&a))
}

/// Whether the oracle's pod has address `a`: loopback, a pod IP, or ::6 (the IPv6 passthrough
/// source, which it puts on lo).
fn pod_owns(a: IpAddr) -> bool {
    a.is_loopback()
        || POD_IPS.contains(&a)
        || a == IpAddr::V6(std::net::Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 6))
}

/// The peer's IPv4 address.
pub const PEER_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 99));
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
            handles: HandleMap::default(),
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
        tp.start_tracing()?;
        Ok(tp)
    }

    /// Adds the oracle's trace table to the pod and has the pod's agent listen to the events.
    fn start_tracing(&mut self) -> Result<(), OracleError> {
        if let Some(why) = tracing_unavailable() {
            return Err(OracleError::Setup(why));
        }
        let out = self
            .pod
            .exec("nft", &["-f", "-"], trace::trace_table_script().as_bytes())
            .map_err(|e| OracleError::Setup(format!("cannot run `nft` (install nftables): {e}")))?;
        if !out.status.success() {
            return Err(OracleError::Setup(format!(
                "nft: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        self.tell(Side::Pod, "trace\n")?;
        loop {
            match self.events.recv_timeout(Duration::from_secs(10)) {
                Ok((Side::Pod, l)) if l == "trace ok" => return Ok(()),
                Ok((Side::Pod, l)) if l.starts_with("trace error") => {
                    return Err(OracleError::Setup(l));
                }
                Ok(_) => {}
                Err(_) => return Err(OracleError::Agent("pod")),
            }
        }
    }

    /// Writes a command line to a side's agent.
    fn tell(&mut self, side: Side, line: &str) -> Result<(), OracleError> {
        let name = if side == Side::Pod { "pod" } else { "peer" };
        let agent = self
            .agents
            .iter_mut()
            .find(|(s, _)| *s == side)
            .map(|(_, a)| a)
            .ok_or(OracleError::Agent(name))?;
        agent
            .stdin
            .write_all(line.as_bytes())
            .and_then(|()| agent.stdin.flush())
            .map_err(|_| OracleError::Agent(name))
    }

    /// Every trace event since the last call, in the order the kernel sent them.
    pub fn trace_events(&mut self) -> Result<Vec<TraceEvent>, OracleError> {
        self.tell(Side::Pod, "flush\n")?;
        let mut v = Vec::new();
        loop {
            let (side, l) = self
                .events
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| OracleError::Agent("pod"))?;
            if side != Side::Pod {
                continue;
            }
            if l == "flushed" {
                return Ok(v);
            }
            if let Some(e) = l.strip_prefix("flushed error ") {
                return Err(OracleError::Trace(e.to_string()));
            }
            if l.starts_with("ev ") {
                v.push(l.parse().map_err(OracleError::Trace)?);
            }
        }
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
        // The rules' handles, which the trace events name.
        let out = self
            .pod
            .exec("nft", &["-j", "list", "ruleset"], b"")
            .map_err(|e| OracleError::Trace(e.to_string()))?;
        if !out.status.success() {
            return Err(OracleError::Trace(format!(
                "nft -j list ruleset: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        self.handles = HandleMap::from_json(&out.stdout).map_err(OracleError::Trace)?;
        // Nothing of an earlier ruleset's flows is left to read.
        self.trace_events()?;
        Ok(())
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
        if let Some(why) = unsupported(c) {
            return Err(OracleError::Unsupported(why));
        }
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
        // The flow's source, bound as given (from outside: an address the peer has, see
        // `unsupported`); `-` lets routing choose.
        let src = c.src.map_or_else(|| "-".to_string(), |s| s.to_string());
        let proto = if c.proto == 17 { "udp" } else { "tcp" };
        let line = format!(
            "connect {id} {proto} {uid} {gid} {src} {} {} {} {}\n",
            c.sport, c.dst, c.dport, c.mark
        );
        self.tell(side, &line)?;
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
    // A process group of its own: a Ctrl-C is for the oracle, whose handler deletes the
    // namespaces; an agent (and its connectors) ends when its stdin closes.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
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
        // Here rather than in the namespaces' own drop, which does not retry.
        delete_netns(self.pod.name());
        delete_netns(self.peer.name());
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
    let rules = || {
        rs.tables(family)
            .iter()
            .flat_map(|t| &t.chains)
            .flat_map(|c| &c.rules)
    };
    // Ambient's pattern: a connection mark set for the proxy's transparent connections and
    // restored onto their answers, which its node setup routes back to lo like TPROXY's.
    let restores = rules().any(|r| matches!(r.target, Some(Target::ConnmarkRestore { .. })));
    let mut v: Vec<String> = rules()
        .filter_map(|r| match &r.target {
            Some(Target::Tproxy { mark, .. }) if mark.mask != 0 => {
                Some(format!("0x{:x}/0x{:x}", mark.value, mark.mask))
            }
            Some(Target::ConnmarkSet(mark)) if restores && mark.mask != 0 => {
                Some(format!("0x{:x}/0x{:x}", mark.value, mark.mask))
            }
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The model's hits for a hop, each with its family.
fn model_hits(h: &HopReport) -> Vec<KernelHit> {
    let fam = h.packet.family();
    h.matched.iter().map(|r| (fam, r.clone())).collect()
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

/// Compares one flow's kernel outcome with the model: `hits` are the rules the kernel traced for
/// its first packet.
fn compare_flow(
    c: &Connection,
    hop: &HopReport,
    obs: &Observed,
    hits: &[KernelHit],
    out: &mut Vec<Disagreement>,
) {
    let want = model_hits(hop);
    if want != hits {
        out.push(Disagreement {
            flow: *c,
            what: "rule hits of the first packet".into(),
            model: show(&want),
            kernel: show(hits),
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
        let mut observed = Vec::with_capacity(chunk.len());
        for (c, _) in chunk {
            observed.push(tp.run_flow(c)?);
        }
        let events = tp.trace_events()?;
        let sports: Vec<u16> = chunk.iter().map(|(c, _)| c.sport).collect();
        let (hits, strays) = trace::attribute(&events, &tp.handles, &sports);
        for (((c, hop), obs), hits) in chunk.iter().zip(&observed).zip(&hits) {
            compare_flow(c, hop, obs, hits, &mut report.disagreements);
        }
        for s in strays {
            let p = s.packet;
            report.disagreements.push(Disagreement {
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
            });
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

/// Every hop of `journeys` as a flow for the oracle, and the ports those flows need listeners on
/// (each hop's destination port and the port it was delivered to).
pub fn journey_flows<'a>(
    journeys: impl IntoIterator<Item = &'a sidecar_model::pod::Journey>,
) -> (Vec<Connection>, Vec<u16>) {
    let mut flows = Vec::new();
    let mut ports = Vec::new();
    for h in journeys.into_iter().flat_map(|j| &j.hops) {
        flows.push(h.connection());
        ports.push(h.packet.dport);
        if let Delivery::App(port) | Delivery::Listener(port) = h.delivered_to {
            ports.push(port);
        }
    }
    (flows, ports)
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
                mark: 0,
                iface: None,
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
            ..Connection::tcp(dst, 40000, dport, uid, gid)
        });
    }
    out
}
