//! The nat table kube-proxy's iptables mode keeps on a node, as `iptables-save` prints it, for N
//! services of one port each with K endpoints each; optionally with a mesh's rules merged in.
//!
//! # What kube-proxy writes, and what we write
//!
//! The rules follow kube-proxy's iptables proxier (kubernetes `pkg/proxy/iptables/proxier.go`,
//! 1.28 and later, `--cluster-cidr` set, no `--masquerade-all`, every service with
//! `internalTrafficPolicy` and `externalTrafficPolicy` Cluster), in the words `iptables-save`
//! prints them with after `iptables-restore` (checked in a scratch namespace by
//! `verify/tests/synth.rs`):
//!
//! * `PREROUTING` and `OUTPUT` jump to `KUBE-SERVICES` ("kubernetes service portals"),
//!   `POSTROUTING` to `KUBE-POSTROUTING` ("kubernetes postrouting rules").
//! * `KUBE-MARK-MASQ`: `-j MARK --set-xmark 0x4000/0x4000` (kube-proxy writes `--or-mark 0x4000`).
//! * `KUBE-POSTROUTING`: `RETURN` unless `-m mark --mark 0x4000/0x4000`, then the mark cleared
//!   (`--xor-mark 0x4000`, saved as `--set-xmark 0x4000/0x0`) and `MASQUERADE --random-fully`.
//! * `KUBE-SERVICES`: per service port `-d CLUSTER-IP/32 -p PROTO -m comment --comment "NS/NAME:PORT
//!   cluster IP" -m PROTO --dport P -j KUBE-SVC-…`, and last `-m addrtype --dst-type LOCAL -j
//!   KUBE-NODEPORTS`.
//! * `KUBE-SVC-…`: first `! -s CLUSTER-CIDR` (the same test as in `KUBE-SERVICES`) `-j
//!   KUBE-MARK-MASQ`, then one rule per endpoint `-m comment --comment "NS/NAME:PORT -> IP:PORT"`,
//!   the i-th of n with `-m statistic --mode random --probability 1/(n-i)` except the last: kube-proxy
//!   writes the probability with 10 decimals, the kernel keeps it in units of 2⁻³¹, and
//!   `iptables-save` prints that with 11 (1/3 is `0.33333333349`).
//! * `KUBE-SEP-…` per endpoint: `-s IP/32 … -j KUBE-MARK-MASQ` (hairpin) and `-p PROTO … -m PROTO -j
//!   DNAT --to-destination IP:PORT`.
//! * A NodePort service: `KUBE-NODEPORTS -p PROTO … --dport NODEPORT -j KUBE-EXT-…`, and
//!   `KUBE-EXT-…` marks for masquerade and jumps to the service's `KUBE-SVC-…`.
//! * The chains are named as kube-proxy names them: `KUBE-SVC-`, `KUBE-EXT-` + the first 16
//!   characters of base32(sha256("NS/NAME:PORT" + "tcp")), `KUBE-SEP-` + the same of
//!   sha256("NS/NAME:PORT" + "tcp" + "IP:PORT"). The empty canary chains `KUBE-KUBELET-CANARY`
//!   (kubelet's) and `KUBE-PROXY-CANARY` are there too.
//!
//! Services get cluster IPs from [`SERVICE_CIDR`], endpoints from [`CLUSTER_CIDR`] (distinct
//! until the range is used up, then shared between services, as a pod backing several services
//! is), node ports from 30000–32767; names, ports, protocols (one service in 16 is UDP) are drawn
//! from the seed. Not written: load balancers (`KUBE-FW-`), `Local` traffic policies
//! (`KUBE-SVL-`, `KUBE-SVC-` without endpoints' `REJECT` in the filter table), session affinity
//! (`-m recent`), the filter table's `KUBE-FIREWALL` and `KUBE-PROXY-FIREWALL`.
//!
//! # The node and the mesh
//!
//! With a mesh ([`Spec::mesh`]), the text is a node's whole nat table with a mesh's rules in it:
//! what a pod with a mesh sidecar sees only when it runs with `hostNetwork: true`, sharing the
//! node's network namespace, so that the mesh's init writes its rules beside kube-proxy's. The
//! mesh's rules are its built-in ruleset's ([`crate::profile::BUILTIN`]; Istio's classic one),
//! every table of it: in nat its chains join kube-proxy's and its rules in `PREROUTING`,
//! `OUTPUT`, `INPUT` and `POSTROUTING` come before kube-proxy's (kube-proxy prepends its jumps
//! when it starts, so this is the order after the mesh's init inserted or kube-proxy appended).
//! The pod's address is then the node's: `addrtype --dst-type LOCAL` is decided against it.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

use sha2::{Digest, Sha256};

use super::rng::Rng;
use crate::ast::Family;
use crate::error::ParseError;

/// Where cluster IPs come from (the kubeadm default service CIDR).
pub const SERVICE_CIDR: &str = "10.96.0.0/12";
/// Where endpoints come from, and the cluster CIDR of the `! -s` masquerade test.
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// The node port range (kube-apiserver's default `--service-node-port-range`).
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;
/// The most services a spec may ask for.
pub const MAX_SERVICES: usize = 200_000;
/// The most endpoints per service.
pub const MAX_ENDPOINTS: usize = 1_000;

/// A mesh whose rules are merged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mesh {
    /// Istio's classic sidecar ruleset ([`crate::DEFAULT_RULESET`]).
    Istio,
    /// Kuma's (`corpus/rulesets/kuma.rules`).
    Kuma,
    /// Linkerd's (`corpus/rulesets/linkerd.rules`).
    Linkerd,
    /// Consul's (`corpus/rulesets/consul.rules`).
    Consul,
}

impl Mesh {
    /// Every mesh, as `--mesh` lists them.
    pub const ALL: [Mesh; 4] = [Mesh::Istio, Mesh::Kuma, Mesh::Linkerd, Mesh::Consul];

    /// Its name (the built-in profile's).
    pub fn name(self) -> &'static str {
        match self {
            Mesh::Istio => "istio",
            Mesh::Kuma => "kuma",
            Mesh::Linkerd => "linkerd",
            Mesh::Consul => "consul",
        }
    }

    /// The mesh called `name`.
    pub fn from_name(name: &str) -> Option<Mesh> {
        Mesh::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Its built-in ruleset's text.
    pub fn rules(self) -> &'static str {
        crate::profile::BUILTIN
            .iter()
            .find(|b| b.name == self.name())
            .and_then(|b| b.rules)
            .map_or(crate::DEFAULT_RULESET, |(_, text)| text)
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Services (one port each).
    pub services: usize,
    /// Endpoints per service (at least 1).
    pub endpoints: usize,
    /// Every M-th service (the 1st, the M+1-th, …) is a NodePort service; 0: none.
    pub nodeport_every: usize,
    /// A mesh whose rules are merged in.
    pub mesh: Option<Mesh>,
    /// The seed of names, addresses and ports.
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            services: 100,
            endpoints: 3,
            nodeport_every: 10,
            mesh: None,
            seed: 1,
        }
    }
}

/// Why a spec cannot be generated.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A count out of range.
    #[error("{what} must be from {min} to {max}, not {given}")]
    Range {
        /// Which count.
        what: &'static str,
        /// The least.
        min: usize,
        /// The most.
        max: usize,
        /// What was asked.
        given: usize,
    },
    /// More NodePort services than node ports.
    #[error("{0} NodePort services do not fit in the node port range 30000-32767 (2768 ports): raise --nodeport-every")]
    NodePorts(usize),
    /// The mesh's ruleset did not parse (a bug of ours: it is built in).
    #[error("the mesh's built-in ruleset: {0}")]
    Mesh(#[from] Box<ParseError>),
    /// A mesh chain with the name of one of kube-proxy's.
    #[error("the mesh's chain `{0}` has the name of one of kube-proxy's")]
    Clash(String),
}

/// The layer-4 protocol of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// As iptables and kube-proxy's hashes spell it.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One service port and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The namespace.
    pub namespace: String,
    /// The service's name.
    pub name: String,
    /// The port's name.
    pub port_name: String,
    /// The protocol.
    pub proto: Proto,
    /// The cluster IP.
    pub cluster_ip: Ipv4Addr,
    /// The service port.
    pub port: u16,
    /// The node port, for a NodePort service.
    pub node_port: Option<u16>,
    /// The endpoints, in the order of the `KUBE-SVC-` rules.
    pub endpoints: Vec<SocketAddrV4>,
}

impl Service {
    /// `NS/NAME:PORT`, kube-proxy's `ServicePortName`.
    pub fn port_ref(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.name, self.port_name)
    }
    /// Its `KUBE-SVC-…` chain.
    pub fn svc_chain(&self) -> String {
        format!(
            "KUBE-SVC-{}",
            hash16(&[&self.port_ref(), self.proto.name()])
        )
    }
    /// Its `KUBE-EXT-…` chain (a NodePort service's).
    pub fn ext_chain(&self) -> String {
        format!(
            "KUBE-EXT-{}",
            hash16(&[&self.port_ref(), self.proto.name()])
        )
    }
    /// The `KUBE-SEP-…` chain of endpoint `ep`.
    pub fn sep_chain(&self, ep: &SocketAddrV4) -> String {
        let ep = ep.to_string();
        format!(
            "KUBE-SEP-{}",
            hash16(&[&self.port_ref(), self.proto.name(), &ep])
        )
    }
}

/// kube-proxy's chain name hash: the first 16 characters of base32 (RFC 4648 alphabet) of the
/// SHA-256 of the parts concatenated.
pub fn hash16(parts: &[&str]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    // 16 characters are 80 bits: the first 10 bytes, read 5 bits at a time.
    let mut bits: u128 = 0;
    for b in digest.iter().take(10) {
        bits = (bits << 8) | u128::from(*b);
    }
    (0..16)
        .map(|i| {
            let idx = (bits >> (75 - 5 * i)) & 31;
            char::from(*ALPHABET.get(idx as usize).unwrap_or(&b'A'))
        })
        .collect()
}

/// The probability of the i-th of `n` remaining endpoints as `iptables-save` prints it:
/// kube-proxy's `%0.10f` of 1/n, rounded by the kernel to units of 2⁻³¹, printed with 11
/// decimals.
pub fn probability(n: usize) -> String {
    let written = format!("{:.10}", 1.0 / n as f64);
    let p: f64 = written.parse().unwrap_or(0.0);
    let scale = f64::from(0x8000_0000u32);
    format!("{:.11}", (p * scale).round() / scale)
}

/// How many chains and rules the nat table of `spec` holds, without a mesh: 10 fixed chains
/// (the 4 built-in ones, `KUBE-SERVICES`, `KUBE-NODEPORTS`, `KUBE-MARK-MASQ`,
/// `KUBE-POSTROUTING` and the 2 canaries) + N `KUBE-SVC-` + N·K `KUBE-SEP-` + E `KUBE-EXT-`
/// chains; 8 fixed rules + N·(2 + 3K) + 3E rules, E being the NodePort services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Chains, built-in ones included.
    pub chains: usize,
    /// Rules.
    pub rules: usize,
}

/// The NodePort services of `spec`: the 1st, the M+1-th, … (none when M is 0).
pub fn nodeport_services(spec: &Spec) -> usize {
    match spec.nodeport_every {
        0 => 0,
        m => spec.services.div_ceil(m),
    }
}

/// [`Counts`] of `spec` (its formula).
pub fn counts(spec: &Spec) -> Counts {
    let (n, k, e) = (spec.services, spec.endpoints, nodeport_services(spec));
    Counts {
        chains: 10 + n + n * k + e,
        rules: 8 + n * (2 + 3 * k) + 3 * e,
    }
}

fn check(spec: &Spec) -> Result<(), SynthError> {
    let range = |what, min, max, given| {
        if (min..=max).contains(&given) {
            Ok(())
        } else {
            Err(SynthError::Range {
                what,
                min,
                max,
                given,
            })
        }
    };
    range("--services", 1, MAX_SERVICES, spec.services)?;
    range("--endpoints", 1, MAX_ENDPOINTS, spec.endpoints)?;
    let e = nodeport_services(spec);
    if e > NODE_PORTS.len() {
        return Err(SynthError::NodePorts(e));
    }
    Ok(())
}

/// The namespaces services are drawn into.
const NAMESPACES: &[&str] = &[
    "default",
    "kube-system",
    "payments",
    "checkout",
    "catalog",
    "search",
    "identity",
    "monitoring",
    "ingress",
    "data",
];
/// Words service names are made of (with the service's number, so that names are distinct).
const WORDS: &[&str] = &[
    "api", "web", "cart", "orders", "users", "auth", "ledger", "queue", "cache", "db", "gateway",
    "search", "images", "mail", "events", "metrics",
];
/// TCP ports: name, port, target port.
const TCP_PORTS: &[(&str, u16, u16)] = &[
    ("http", 80, 8080),
    ("https", 443, 8443),
    ("grpc", 9000, 9000),
    ("http", 8080, 8080),
    ("metrics", 9090, 9090),
    ("redis", 6379, 6379),
    ("postgres", 5432, 5432),
    ("http-alt", 8000, 3000),
];
/// UDP ports.
const UDP_PORTS: &[(&str, u16, u16)] = &[("dns", 53, 53), ("statsd", 8125, 8125)];

/// The services of `spec`, in the order of the `KUBE-SERVICES` rules.
pub fn services(spec: &Spec) -> Result<Vec<Service>, SynthError> {
    check(spec)?;
    let mut rng = Rng::new(spec.seed);
    let mut used_ips = HashSet::new();
    let mut used_node_ports = HashSet::new();
    // Endpoint addresses: 10.244.X.Y, Y from 1 to 254, distinct until the range is used up.
    const EP_SPACE: u64 = 256 * 254;
    let ep_start = rng.below(EP_SPACE);
    let mut next_ep: u64 = 0;
    let mut out = Vec::with_capacity(spec.services);
    for i in 0..spec.services {
        let namespace = (*rng.pick(NAMESPACES).unwrap_or(&"default")).to_string();
        let word = rng.pick(WORDS).unwrap_or(&"svc");
        let name = format!("{word}-{i}");
        let proto = if i % 16 == 7 { Proto::Udp } else { Proto::Tcp };
        let ports = if proto == Proto::Udp {
            UDP_PORTS
        } else {
            TCP_PORTS
        };
        let &(port_name, port, target) = rng.pick(ports).unwrap_or(&("http", 80, 8080));
        // A cluster IP of 10.96.0.0/12 that is not the network's first two (the network
        // address and the apiserver's `kubernetes` service) nor its broadcast address.
        let cluster_ip = loop {
            let host = 2 + rng.below((1 << 20) - 3);
            let ip = Ipv4Addr::from(0x0a60_0000u32 | host as u32);
            if used_ips.insert(ip) {
                break ip;
            }
        };
        let node_port = match spec.nodeport_every {
            m if m > 0 && i % m == 0 => loop {
                let span = u64::from(NODE_PORTS.end() - NODE_PORTS.start()) + 1;
                let p = NODE_PORTS.start() + rng.below(span) as u16;
                if used_node_ports.insert(p) {
                    break Some(p);
                }
            },
            _ => None,
        };
        let endpoints = (0..spec.endpoints)
            .map(|_| {
                let o = (ep_start + next_ep) % EP_SPACE;
                next_ep += 1;
                let ip = Ipv4Addr::new(10, 244, (o / 254) as u8, (o % 254 + 1) as u8);
                SocketAddrV4::new(ip, target)
            })
            .collect();
        out.push(Service {
            namespace,
            name,
            port_name: port_name.to_string(),
            proto,
            cluster_ip,
            port,
            node_port,
            endpoints,
        });
    }
    Ok(out)
}

/// The built-in chains of nat, in the order `iptables-save` prints them.
const NAT_BUILTIN: [&str; 4] = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];

/// A nat table being written: the rule lines of each chain.
#[derive(Default)]
struct Nat {
    builtin: [String; 4],
    user: BTreeMap<String, String>,
}

impl Nat {
    /// The text of `chain`'s rules, which it creates when new.
    fn chain(&mut self, chain: &str) -> &mut String {
        if let Some(i) = NAT_BUILTIN.iter().position(|c| *c == chain) {
            if let Some(s) = self.builtin.get_mut(i) {
                return s;
            }
        }
        self.user.entry(chain.to_string()).or_default()
    }

    fn print(&self, out: &mut String) {
        out.push_str("*nat\n");
        for c in NAT_BUILTIN {
            let _ = writeln!(out, ":{c} ACCEPT [0:0]");
        }
        for c in self.user.keys() {
            let _ = writeln!(out, ":{c} - [0:0]");
        }
        for s in &self.builtin {
            out.push_str(s);
        }
        for s in self.user.values() {
            out.push_str(s);
        }
        out.push_str("COMMIT\n");
    }
}

/// kube-proxy's nat table for `services`.
fn kube_nat(services: &[Service]) -> Nat {
    let mut nat = Nat::default();
    let portals = "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n";
    let _ = write!(nat.chain("PREROUTING"), "-A PREROUTING {portals}");
    let _ = write!(nat.chain("OUTPUT"), "-A OUTPUT {portals}");
    nat.chain("POSTROUTING").push_str(
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n",
    );
    nat.chain("KUBE-KUBELET-CANARY");
    nat.chain("KUBE-PROXY-CANARY");
    nat.chain("KUBE-MARK-MASQ")
        .push_str("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n");
    nat.chain("KUBE-POSTROUTING").push_str(
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n\
         -A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n\
         -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n",
    );
    nat.chain("KUBE-NODEPORTS");
    for s in services {
        let spn = s.port_ref();
        let p = s.proto.name();
        let svc = s.svc_chain();
        let (ip, port) = (s.cluster_ip, s.port);
        let dest = format!(
            "-d {ip}/32 -p {p} -m comment --comment \"{spn} cluster IP\" -m {p} --dport {port}"
        );
        let _ = writeln!(
            nat.chain("KUBE-SERVICES"),
            "-A KUBE-SERVICES {dest} -j {svc}"
        );
        let mut body = format!("-A {svc} ! -s {CLUSTER_CIDR} {dest} -j KUBE-MARK-MASQ\n");
        let n = s.endpoints.len();
        for (i, ep) in s.endpoints.iter().enumerate() {
            let sep = s.sep_chain(ep);
            let _ = write!(body, "-A {svc} -m comment --comment \"{spn} -> {ep}\"");
            if i + 1 < n {
                let _ = write!(
                    body,
                    " -m statistic --mode random --probability {}",
                    probability(n - i)
                );
            }
            let _ = writeln!(body, " -j {sep}");
            let _ = write!(
                nat.chain(&sep),
                "-A {sep} -s {}/32 -m comment --comment \"{spn}\" -j KUBE-MARK-MASQ\n\
                 -A {sep} -p {p} -m comment --comment \"{spn}\" -m {p} -j DNAT --to-destination {ep}\n",
                ep.ip()
            );
        }
        nat.chain(&svc).push_str(&body);
        if let Some(np) = s.node_port {
            let ext = s.ext_chain();
            let _ = writeln!(
                nat.chain("KUBE-NODEPORTS"),
                "-A KUBE-NODEPORTS -p {p} -m comment --comment \"{spn}\" -m {p} --dport {np} -j {ext}"
            );
            let _ = write!(
                nat.chain(&ext),
                "-A {ext} -m comment --comment \"masquerade traffic for {spn} external destinations\" -j KUBE-MARK-MASQ\n\
                 -A {ext} -j {svc}\n"
            );
        }
    }
    nat.chain("KUBE-SERVICES").push_str(
        "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n",
    );
    nat
}

/// The header and footer [`crate::print_ruleset`] writes around a family's tables.
const HEADER: &str = "# Generated by iptables-save (sidecar-verify)\n";
const FOOTER: &str = "# Completed\n";

/// The ruleset of `spec` as `iptables-save` prints it (with [`crate::print_ruleset`]'s comment
/// lines around it, so that parsing and printing it gives it back byte for byte).
pub fn generate(spec: &Spec) -> Result<String, SynthError> {
    let services = services(spec)?;
    let mut nat = kube_nat(&services);
    let mut other = String::new();
    if let Some(mesh) = spec.mesh {
        other = merge(&mut nat, mesh)?;
    }
    let lines = counts(spec).chains + counts(spec).rules + 8;
    let mut out = String::with_capacity(lines * 120);
    out.push_str(HEADER);
    out.push_str(&other);
    nat.print(&mut out);
    out.push_str(FOOTER);
    if spec.mesh.is_some() {
        // The mesh's other tables and kube-proxy's nat in the order iptables-save prints
        // tables: through the printer, which knows it.
        let parsed = crate::parse("<synth>", out.as_bytes()).map_err(Box::new)?;
        return Ok(crate::print_ruleset(&parsed.ruleset));
    }
    Ok(out)
}

/// Merges the mesh's nat rules into `nat` (its built-in chains' rules first) and returns its
/// other tables' text.
fn merge(nat: &mut Nat, mesh: Mesh) -> Result<String, SynthError> {
    let parsed = crate::parse(mesh.name(), mesh.rules().as_bytes()).map_err(Box::new)?;
    let text = crate::print::print_family(&parsed.ruleset, Family::Ipv4);
    let mut other = String::new();
    let mut in_nat = false;
    let mut mesh_builtin: [String; 4] = Default::default();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            in_nat = t == "nat";
        }
        if !in_nat {
            other.push_str(line);
            other.push('\n');
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let name = decl.split(' ').next().unwrap_or_default();
            if !NAT_BUILTIN.contains(&name) {
                if nat.user.contains_key(name) {
                    return Err(SynthError::Clash(name.to_string()));
                }
                nat.user.insert(name.to_string(), String::new());
            }
        } else if let Some(rule) = line.strip_prefix("-A ") {
            let chain = rule.split(' ').next().unwrap_or_default();
            let slot = NAT_BUILTIN
                .iter()
                .position(|c| *c == chain)
                .and_then(|i| mesh_builtin.get_mut(i));
            let s = match slot {
                Some(s) => s,
                None => nat.chain(chain),
            };
            s.push_str(line);
            s.push('\n');
        }
    }
    for (kube, mesh) in nat.builtin.iter_mut().zip(mesh_builtin) {
        *kube = mesh + kube;
    }
    Ok(other)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    /// The chain names real clusters show: the apiserver's service is `KUBE-SVC-NPX46M4PTMTKRN6Y`
    /// on every cluster, and DNS's `KUBE-SVC-TCOU7JCQXEZGVUNU` (udp) and
    /// `KUBE-SVC-ERIFXISQEP7F7OF4` (tcp).
    #[test]
    fn chain_names_are_kube_proxys() {
        assert_eq!(
            hash16(&["default/kubernetes:https", "tcp"]),
            "NPX46M4PTMTKRN6Y"
        );
        assert_eq!(
            hash16(&["kube-system/kube-dns:dns", "udp"]),
            "TCOU7JCQXEZGVUNU"
        );
        assert_eq!(
            hash16(&["kube-system/kube-dns:dns-tcp", "tcp"]),
            "ERIFXISQEP7F7OF4"
        );
    }

    /// As iptables-save prints kube-proxy's probabilities (values seen on real nodes).
    #[test]
    fn probabilities_are_printed_as_the_kernel_keeps_them() {
        assert_eq!(probability(2), "0.50000000000");
        assert_eq!(probability(3), "0.33333333349");
        assert_eq!(probability(4), "0.25000000000");
        assert_eq!(probability(5), "0.20000000019");
    }

    #[test]
    fn the_same_seed_gives_the_same_text_and_another_seed_another() {
        let a = Spec {
            services: 50,
            seed: 7,
            ..Spec::default()
        };
        let b = Spec {
            seed: 8,
            ..a.clone()
        };
        assert_eq!(generate(&a).unwrap(), generate(&a).unwrap());
        assert_ne!(generate(&a).unwrap(), generate(&b).unwrap());
    }

    #[test]
    fn out_of_range_specs_are_refused() {
        let zero = Spec {
            services: 0,
            ..Spec::default()
        };
        assert!(matches!(generate(&zero), Err(SynthError::Range { .. })));
        let ports = Spec {
            services: 3000,
            nodeport_every: 1,
            ..Spec::default()
        };
        assert!(matches!(generate(&ports), Err(SynthError::NodePorts(3000))));
    }
}
