//! The oracle's pod: two network namespaces joined by a veth pair, an agent listening in each,
//! the ruleset loaded into the pod, and flows run one at a time, with where the kernel delivered
//! each and the rules its first packet hit read back.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use sidecar_model::pod::Connection;
use sidecar_model::print::print_family;
use sidecar_model::{Family, Ruleset, TableKind, Target};

use super::trace::{self, HandleMap, KernelHit, Stray, TraceEvent};
use super::OracleError;
use crate::netns::Netns;
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

/// Why the kernel oracle cannot run on this machine: what [`crate::netns::unavailable`] says,
/// or no `nft` (nftables), which sets up the tracing, or an iptables that is not iptables-nft
/// (the tracing names nftables rules).
pub fn unavailable() -> Option<String> {
    crate::netns::unavailable().or_else(tracing_unavailable)
}

fn tracing_unavailable() -> Option<String> {
    if !crate::netns::on_path("nft") {
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

/// What the kernel did with a batch of flows ([`TestPod::observe`]).
#[derive(Debug, Clone)]
pub struct Batch {
    /// Per flow, in order: where it was delivered, and the rules its first packet hit.
    pub flows: Vec<(Observed, Vec<KernelHit>)>,
    /// Traced packets with rule hits that no flow of the batch sent.
    pub strays: Vec<Stray>,
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
    /// The native nft tables the last ruleset loaded (`inet istio-proxy-nat`), deleted by the next.
    nft_tables: Vec<String>,
    /// The pod's interfaces besides eth0 and lo, made when a flow first arrives on one
    /// ([`TestPod::iface_mark`]); the peer's mark for interface `ifaces[k]` is `IFACE_MARK + k`.
    ifaces: Vec<String>,
}

/// The first of the peer's socket marks that route a flow into the pod through an interface of
/// its own (and the first of the peer's routing tables, `IFACE_TABLE + k`, that do so).
const IFACE_MARK: u32 = 0x5000;
const IFACE_TABLE: u32 = 500;

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
/// Why the oracle cannot run `c` as it is, if it cannot: the peer sends only from addresses it
/// has (its own and the ranges it answers for); and only a marked (proxy) socket binds an
/// address that is not the pod's, transparently, its answers routed back by the policy route of
/// the ruleset's connection mark. A connection arriving on another interface than eth0 is run
/// ([`TestPod::iface_mark`]).
pub fn unsupported(c: &Connection) -> Option<String> {
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

/// Runs `program args` in `ns`; its failure, with what it said, is a setup error.
fn run_in(ns: &Netns, program: &str, args: &[&str]) -> Result<(), OracleError> {
    let out = ns
        .exec(program, args, b"")
        .map_err(|e| OracleError::Setup(format!("{program}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(OracleError::Setup(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn ip(ns: &Netns, args: &[&str]) -> Result<(), OracleError> {
    run_in(ns, "ip", args)
}

fn sysctl(ns: &Netns, settings: &[&str]) -> Result<(), OracleError> {
    let mut args = vec!["-qw"];
    args.extend_from_slice(settings);
    run_in(ns, "sysctl", &args)
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
            // A link-local address usable at once: while it is tentative (duplicate detection,
            // a second or two) a neighbour solicitation goes out from `::`, which the other
            // side takes for duplicate detection and does not answer.
            sysctl(ns, &["net.ipv6.conf.eth0.accept_dad=0"])?;
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
        // The peer sends a flow that arrives on another pod interface with a socket mark whose
        // policy route leads there (`iface_mark`), also when the flow is addressed to the peer
        // itself: the `local` table is looked up after those routes, and the peer accepts the
        // answer from its own address on eth0 (accept_local).
        for f in ["-4", "-6"] {
            ip(&peer, &[f, "rule", "add", "pref", "100", "lookup", "local"])?;
            ip(&peer, &[f, "rule", "del", "pref", "0"])?;
        }
        sysctl(
            &peer,
            &[
                "net.ipv4.conf.all.accept_local=1",
                "net.ipv4.conf.eth0.accept_local=1",
            ],
        )?;
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
            nft_tables: Vec::new(),
            ifaces: Vec::new(),
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
                if !rs
                    .tables(fam)
                    .iter()
                    .any(|t| t.kind == kind && t.nft.is_none())
                {
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
        // Native nft tables: the last ruleset's go, this one's come (`nft list ruleset`'s form).
        // `nft -f` is one transaction: when it fails, the last ruleset's tables stay, and are
        // deleted by the next load.
        let mut script: String = self
            .nft_tables
            .iter()
            .map(|t| format!("delete table {t}\n"))
            .collect();
        script.push_str(&sidecar_model::nft::print_nft(rs));
        let mut loaded = Vec::new();
        for t in rs.ipv4.iter().chain(&rs.ipv6) {
            if let Some(n) = &t.nft {
                let name = format!("{} {}", n.family.name(), n.name);
                if !loaded.contains(&name) {
                    loaded.push(name);
                }
            }
        }
        if !script.is_empty() {
            let out = self
                .pod
                .exec("nft", &["-f", "-"], script.as_bytes())
                .map_err(|e| OracleError::Load(e.to_string()))?;
            if !out.status.success() {
                return Err(OracleError::Load(format!(
                    "nft -f: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            self.nft_tables = loaded;
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
        self.handles = HandleMap::from_json(&out.stdout)
            .map_err(OracleError::Trace)?
            .with_nft_tables(rs);
        // Nothing of an earlier ruleset's flows is left to read.
        self.trace_events()?;
        Ok(())
    }

    /// The peer's socket mark for a flow arriving in the pod on interface `name`, making the
    /// interface first: a veth pair (`name` in the pod, `ifK` in the peer) whose pod end has the
    /// pod's addresses too, as the model assumes of every interface but lo (REDIRECT gives the
    /// incoming interface's first address, and drops the packet when it has none). The peer's
    /// table `IFACE_TABLE + k`, looked up for mark `IFACE_MARK + k`, routes everything into
    /// that pair; the pod's answers leave by eth0 as routing says.
    pub fn iface_mark(&mut self, name: &str) -> Result<u32, OracleError> {
        let k = match self.ifaces.iter().position(|i| i == name) {
            Some(k) => k,
            None => self.add_iface(name)?,
        };
        Ok(IFACE_MARK.saturating_add(u32::try_from(k).unwrap_or(u32::MAX)))
    }

    /// Makes interface `name` (see [`TestPod::iface_mark`]); its number `k`.
    fn add_iface(&mut self, name: &str) -> Result<usize, OracleError> {
        let k = self.ifaces.len();
        let k32 = u32::try_from(k).unwrap_or(u32::MAX);
        let peer_end = format!("if{k}");
        let mark = format!("{:#x}", IFACE_MARK.saturating_add(k32));
        let table = IFACE_TABLE.saturating_add(k32).to_string();
        let out = Command::new("ip")
            .args([
                "link",
                "add",
                name,
                "netns",
                self.pod.name(),
                "type",
                "veth",
            ])
            .args(["peer", "name", &peer_end, "netns", self.peer.name()])
            .output()
            .map_err(|e| OracleError::Setup(e.to_string()))?;
        if !out.status.success() {
            return Err(OracleError::Unsupported(format!(
                "arriving on interface {name}, which the oracle cannot make: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        self.ifaces.push(name.to_string());
        let (pod, peer) = (&self.pod, &self.peer);
        sysctl(pod, &[&format!("net.ipv6.conf.{name}.accept_dad=0")])?;
        sysctl(peer, &[&format!("net.ipv6.conf.{peer_end}.accept_dad=0")])?;
        ip(pod, &["link", "set", name, "up"])?;
        ip(peer, &["link", "set", &peer_end, "up"])?;
        let mac = pod
            .exec("cat", &[&format!("/sys/class/net/{name}/address")], b"")
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .map_err(|e| OracleError::Setup(e.to_string()))?;
        ip(
            pod,
            &["addr", "add", "10.1.0.5/32", "dev", name, "noprefixroute"],
        )?;
        let v6 = [
            "-6",
            "addr",
            "add",
            "fd00::5/128",
            "dev",
            name,
            "nodad",
            "noprefixroute",
        ];
        ip(pod, &v6)?;
        // The peer's IPv6 gateway: a link-local address of the pod's end, known without
        // neighbour discovery (the pod answers that only for addresses of the interface asked).
        ip(
            pod,
            &["-6", "addr", "add", "fe80::5/64", "dev", name, "nodad"],
        )?;
        for (f, gw) in [("-4", "10.1.0.5"), ("-6", "fe80::5")] {
            ip(
                peer,
                &[
                    f,
                    "neigh",
                    "add",
                    gw,
                    "lladdr",
                    &mac,
                    "dev",
                    &peer_end,
                    "nud",
                    "permanent",
                ],
            )?;
            let onlink: &[&str] = if f == "-4" { &["onlink"] } else { &[] };
            let mut route = vec![f, "route", "add", "default", "via", gw, "dev", &peer_end];
            route.extend_from_slice(onlink);
            route.extend_from_slice(&["table", &table]);
            ip(peer, &route)?;
            ip(
                peer,
                &[
                    f, "rule", "add", "pref", "10", "fwmark", &mark, "lookup", &table,
                ],
            )?;
        }
        Ok(k)
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
        // A mark does not cross into the pod (veth scrubs it): from outside it only picks the
        // interface the flow arrives on.
        let mark = match (c.from_outside, c.iface) {
            (true, Some(i)) => self.iface_mark(i.as_str())?,
            (true, None) => 0,
            (false, _) => c.mark,
        };
        // The flow's source, bound as given (from outside: an address the peer has, see
        // `unsupported`); `-` lets routing choose.
        let src = c.src.map_or_else(|| "-".to_string(), |s| s.to_string());
        let proto = if c.proto == 17 { "udp" } else { "tcp" };
        let line = format!(
            "connect {id} {proto} {uid} {gid} {src} {} {} {} {mark}\n",
            c.sport, c.dst, c.dport
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

    /// Runs `flows` one after the other, each with the source port [`TestPod::next_sport`] gave
    /// it, then reads the kernel's trace events and gives them to the flows by source port.
    pub fn observe(&mut self, flows: &[Connection]) -> Result<Batch, OracleError> {
        let mut observed = Vec::with_capacity(flows.len());
        for c in flows {
            observed.push(self.run_flow(c)?);
        }
        let events = self.trace_events()?;
        let sports: Vec<u16> = flows.iter().map(|c| c.sport).collect();
        let (hits, strays) = trace::attribute(&events, &self.handles, &sports);
        Ok(Batch {
            flows: observed.into_iter().zip(hits).collect(),
            strays,
        })
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
