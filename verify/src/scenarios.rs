//! The six kinds of sidecar traffic that the article this project grew from describes
//! ([`ARTICLE`]: Tetrate's "Traffic types and iptables rules in Istio sidecar explained"), with
//! the ISTIO_OUTPUT rules it claims each takes, and the cases it leaves out that users hit. Each
//! is run as a journey and compared with the claim ([`run_scenarios`]), and its hops are flows
//! for the kernel oracle ([`scenario_flows`]).
//!
//! The scenarios come from the profile: its listeners, identities, metrics and admin ports, DNS
//! listener and control-plane port, so they run for every built-in mesh (a scenario the profile
//! has nothing for, such as a metrics scrape without a metrics port, is left out). The article's
//! claims are about Istio's sidecar: they are compared only when the profile is built on
//! `istio` ([`Profile::base`]); for another mesh the journeys are shown without a verdict.
//!
//! A claim is, per hop, the ISTIO_OUTPUT rule the article says decides it (if it names one) and
//! where the hop arrives. The article's claims are treated as claims to check, not as truth.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use sidecar_model::pod::{Connection, Delivery, HopReport, Journey, Outcome, Profile, Simulator};
use sidecar_model::Family;

/// Where the article says a hop arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimedArrival {
    /// A proxy listener port.
    Listener(u16),
    /// The application in the pod.
    App,
    /// Out of the pod.
    Remote,
    /// Dropped or rejected.
    Dropped,
}

/// One hop of a claimed path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClaimedHop {
    /// The ISTIO_OUTPUT rule (1-based) the article says decides the hop, if it names one.
    pub istio_output_rule: Option<u32>,
    /// Where it arrives.
    pub arrives: ClaimedArrival,
}

/// A scenario: a connection and, for the article's six, its claimed path.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Short id.
    pub id: &'static str,
    /// What the traffic is, with the profile's values.
    pub title: String,
    /// The article's path, in its words; empty for cases the article leaves out.
    pub article_path: &'static str,
    /// The article's claim as hops; `None` for cases the article leaves out.
    #[serde(skip)]
    pub claim: Option<Vec<ClaimedHop>>,
    /// The connection.
    #[serde(skip)]
    pub connection: Connection,
    /// `ipv6` for the IPv6 counterpart of a scenario (the same traffic, over the pod's IPv6
    /// address, `::1`, the profile's IPv6 peer and IPv6 service addresses); absent for the
    /// article's IPv4 ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
}

/// The article whose claims the scenarios check: its title and where it was published.
pub const ARTICLE: (&str, &str) = (
    "Traffic types and iptables rules in Istio sidecar explained",
    "Tetrate blog, https://tetrate.io/blog/traffic-types-and-iptables-rules-in-istio-sidecar-explained/",
);

/// The service VIP the scenarios use for "call a service whose endpoint is this pod".
pub const SELF_SERVICE_VIP: &str = "10.96.0.20";
/// Istiod's service address.
pub const ISTIOD: &str = "10.96.0.1";
/// [`SELF_SERVICE_VIP`] of the IPv6 scenarios (in 2001:db8::/32, which the kernel oracle's peer
/// answers for).
pub const SELF_SERVICE_VIP_V6: &str = "2001:db8:96::20";
/// [`ISTIOD`] of the IPv6 scenarios.
pub const ISTIOD_V6: &str = "2001:db8:96::1";

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// The addresses a family's scenarios use.
struct Addrs {
    pod_ip: IpAddr,
    remote: IpAddr,
    loopback: IpAddr,
    self_vip: IpAddr,
    istiod: IpAddr,
    cluster_dns: IpAddr,
}

fn addrs(sim: &Simulator, fam: Family) -> Addrs {
    match fam {
        Family::Ipv4 => Addrs {
            pod_ip: sim.pod.primary(Family::Ipv4).unwrap_or(ip("10.1.0.5")),
            remote: sim.profile.remote_peer,
            loopback: ip("127.0.0.1"),
            self_vip: ip(SELF_SERVICE_VIP),
            istiod: ip(ISTIOD),
            cluster_dns: ip("10.96.0.10"),
        },
        Family::Ipv6 => Addrs {
            pod_ip: sim.pod.primary(Family::Ipv6).unwrap_or(ip("fd00::5")),
            remote: IpAddr::V6(sim.profile.remote_peer_v6),
            loopback: ip("::1"),
            self_vip: ip(SELF_SERVICE_VIP_V6),
            istiod: ip(ISTIOD_V6),
            cluster_dns: ip("2001:db8:96::a"),
        },
    }
}

/// The scenarios' families: those the pod has an address of (every family the ruleset holds
/// tables for, when the pod is the commands' [`sidecar_model::pod::Pod::for_rulesets`]). A pod
/// without an IPv4 address has no IPv4 scenarios: their connections could not leave it.
fn families(sim: &Simulator) -> Vec<Family> {
    sim.pod.families()
}

/// The scenarios for a simulator's pod and profile: the article's over IPv4, and their IPv6
/// counterparts, in each family the pod has an address of.
pub fn scenarios(sim: &Simulator) -> Vec<Scenario> {
    families(sim)
        .into_iter()
        .flat_map(|f| family_scenarios(sim, f))
        .collect()
}

/// What the mesh calls its proxy and the agent that talks to its control plane, and the control
/// plane's port, by the built-in profile the profile is built on.
fn mesh_words(p: &Profile) -> (&'static str, &'static str, u16) {
    match p.base.as_str() {
        "ambient" => ("ztunnel", "ztunnel", 15012),
        "kuma" => ("kuma-dp's Envoy", "kuma-dp", 5678),
        "linkerd" => ("linkerd2-proxy", "linkerd2-proxy", 8086),
        "consul" => ("Envoy", "consul-dataplane", 8502),
        _ => ("Envoy", "pilot-agent", 15012),
    }
}

/// The proxy as a process opens connections: its uid, gid and mark, in words.
fn proxy_who(p: &Profile) -> String {
    match p.proxy_mark {
        Some(m) if p.identity().mark.is_some() => format!("mark {m:#x}"),
        _ => format!("uid {}", p.proxy_uid),
    }
}

/// The proxy's own admin port: the first of its ports that is no listener, metrics or DNS port.
fn admin_port(p: &Profile) -> Option<u16> {
    p.proxy_ports.iter().copied().find(|port| {
        *port != p.outbound_port
            && *port != p.inbound_port
            && !p.metrics_ports.contains(port)
            && p.dns_capture_port != Some(*port)
    })
}

/// Whether the article's Istio claims apply to the profile.
pub fn compares_article(p: &Profile) -> bool {
    p.base == "istio"
}

fn family_scenarios(sim: &Simulator, fam: Family) -> Vec<Scenario> {
    let pf = &sim.profile;
    let a = addrs(sim, fam);
    let pod_ip = a.pod_ip;
    let remote = a.remote;
    let (proxy, agent, cp_port) = mesh_words(pf);
    let who = proxy_who(pf);
    let app =
        |dst: IpAddr, dport: u16, uid: u32, gid: u32| Connection::tcp(dst, 40000, dport, uid, gid);
    // As the proxy opens its own connections: its uid, gid and mark.
    let as_proxy = |dst: IpAddr, dport: u16| Connection {
        mark: pf.reconnect_mark(),
        ..Connection::tcp(dst, 40000, dport, pf.proxy_uid, pf.proxy_gid)
    };
    let outside = |dport: u16| Connection {
        src: Some(remote),
        from_outside: true,
        ..Connection::tcp(pod_ip, 40000, dport, 0, 0)
    };
    let hop = |rule: Option<u32>, arrives: ClaimedArrival| ClaimedHop {
        istio_output_rule: rule,
        arrives,
    };
    use ClaimedArrival::*;
    // The article's path and claim, for a profile of Istio's sidecar only.
    let article = compares_article(pf);
    let claim = |path: &'static str, hops: Vec<ClaimedHop>| {
        if article {
            (path, Some(hops))
        } else {
            ("", None)
        }
    };
    let scenario = |id: &'static str, title: String, (article_path, claim), connection| Scenario {
        id,
        title,
        article_path,
        claim,
        connection,
        family: None,
    };
    let mut list = vec![
        scenario(
            "1-remote-to-local",
            "remote pod -> local pod (inbound)".into(),
            claim(
                "PREROUTING -> ISTIO_INBOUND -> ISTIO_IN_REDIRECT -> Envoy 15006 -> OUTPUT -> ISTIO_OUTPUT rule 1 -> POSTROUTING -> app",
                vec![hop(None, Listener(pf.inbound_port)), hop(Some(1), App)],
            ),
            outside(8080),
        ),
        scenario(
            "2-local-to-remote",
            "local pod -> remote pod (outbound)".into(),
            claim(
                "OUTPUT -> ISTIO_OUTPUT rule 9 -> ISTIO_REDIRECT -> Envoy 15001 -> OUTPUT -> ISTIO_OUTPUT rule 4 -> POSTROUTING -> remote",
                vec![hop(Some(9), Listener(pf.outbound_port)), hop(Some(4), Remote)],
            ),
            app(remote, 8080, pf.app_uid, pf.app_gid),
        ),
    ];
    if let Some(&metrics) = pf.metrics_ports.first() {
        list.push(scenario(
            "3-prometheus-scrape",
            format!("Prometheus -> local pod metrics port {metrics}"),
            claim(
                "PREROUTING -> ISTIO_INBOUND (15090 goes to INPUT) -> INPUT -> OUTPUT -> ISTIO_OUTPUT rule 3 -> POSTROUTING -> local pod",
                vec![hop(None, Listener(metrics)), hop(Some(3), App)],
            ),
            outside(metrics),
        ));
    }
    list.push(scenario(
        "4-local-to-local",
        "local pod -> a service whose endpoint is the local pod".into(),
        claim(
            "OUTPUT -> ISTIO_OUTPUT rule 9 -> ISTIO_REDIRECT -> Envoy 15001 -> OUTPUT -> ISTIO_OUTPUT rule 2 -> ISTIO_IN_REDIRECT -> Envoy 15006 -> OUTPUT -> ISTIO_OUTPUT rule 1 -> POSTROUTING -> app",
            vec![
                hop(Some(9), Listener(pf.outbound_port)),
                hop(Some(2), Listener(pf.inbound_port)),
                hop(Some(1), App),
            ],
        ),
        app(a.self_vip, 8080, pf.app_uid, pf.app_gid),
    ));
    if let Some(admin) = admin_port(pf) {
        list.push(scenario(
            "5-envoy-localhost",
            format!(
                "{proxy} inter-process traffic over localhost ({who} -> {}:{admin})",
                a.loopback
            ),
            claim(
                "OUTPUT -> ISTIO_OUTPUT rule 8 -> POSTROUTING -> Envoy process",
                vec![hop(Some(8), Listener(admin))],
            ),
            as_proxy(a.loopback, admin),
        ));
    }
    list.push(scenario(
        "6-sidecar-to-istiod",
        format!("{agent} ({who}) -> the control plane, port {cp_port}"),
        claim(
            "OUTPUT -> ISTIO_OUTPUT rule 9 -> Envoy 15001 -> OUTPUT -> ISTIO_OUTPUT rule 4 -> POSTROUTING -> istiod",
            vec![hop(Some(9), Listener(pf.outbound_port)), hop(Some(4), Remote)],
        ),
        as_proxy(a.istiod, cp_port),
    ));
    list.push(scenario(
        "x-own-pod-ip",
        "app calls its own pod IP directly".into(),
        ("", None),
        app(pod_ip, 8080, pf.app_uid, pf.app_gid),
    ));
    list.push(scenario(
        "x-proxy-gid",
        format!(
            "process with the proxy's gid {} and another uid (OpenShift-style random uid) -> remote",
            pf.proxy_gid
        ),
        ("", None),
        app(remote, 8080, 1_000_670_000, pf.proxy_gid),
    ));
    list.push(scenario(
        "x-root",
        "root process (uid 0) -> remote".into(),
        ("", None),
        app(remote, 8080, 0, 0),
    ));
    list.push(scenario(
        "x-app-localhost",
        format!(
            "app -> {}:8080 (a sidecar of its own, e.g. a local cache)",
            a.loopback
        ),
        ("", None),
        app(a.loopback, 8080, pf.app_uid, pf.app_gid),
    ));
    if let Some(dns_port) = pf.dns_capture_port {
        // The first nameserver the rules capture of this family, else the cluster's DNS service.
        let server = match &pf.dns_servers {
            Some(servers) => servers
                .iter()
                .copied()
                .find(|s| s.is_ipv6() == (fam == Family::Ipv6)),
            None => Some(a.cluster_dns),
        };
        if let Some(server) = server {
            list.push(scenario(
                "x-app-dns",
                format!("app DNS query (UDP) -> {server}:53, for the DNS listener {dns_port}"),
                ("", None),
                Connection {
                    proto: 17,
                    ..app(server, 53, pf.app_uid, pf.app_gid)
                },
            ));
        }
    }
    let family = (fam == Family::Ipv6).then_some(fam);
    list.into_iter()
        .map(|sc| Scenario { family, ..sc })
        .collect()
}

/// The services the scenarios need the proxy to resolve: the self-service VIP → this pod, in
/// each of the scenarios' families.
pub fn scenario_services(sim: &Simulator) -> Vec<(SocketAddr, SocketAddr)> {
    families(sim)
        .into_iter()
        .map(|f| {
            let a = addrs(sim, f);
            (
                SocketAddr::new(a.self_vip, 8080),
                SocketAddr::new(a.pod_ip, 8080),
            )
        })
        .collect()
}

/// The model's path in the claim's vocabulary: per hop, the ISTIO_OUTPUT rule that decided it
/// (the last ISTIO_OUTPUT rule hit in nat) and where it arrived.
pub fn observed(j: &Journey) -> Vec<ClaimedHop> {
    j.hops
        .iter()
        .map(|h| ClaimedHop {
            istio_output_rule: h
                .matched
                .iter()
                .filter(|r| {
                    istio_chain(&r.chain) == "ISTIO_OUTPUT"
                        && r.table == sidecar_model::TableKind::Nat
                })
                .map(|r| r.rule)
                .next_back(),
            arrives: match h.delivered_to {
                Delivery::Listener(p) => ClaimedArrival::Listener(p),
                Delivery::App(_) => ClaimedArrival::App,
                Delivery::Remote(_) => ClaimedArrival::Remote,
                Delivery::Dropped => ClaimedArrival::Dropped,
            },
        })
        .collect()
}

/// A chain's name as the article writes it: Istio's nft backend names `ISTIO_OUTPUT`
/// `istio-output`.
fn istio_chain(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// The model's path in words: per hop its hook, every rule it hits in a chain of the nat table
/// the mesh created (any mesh's: ISTIO_OUTPUT, KUMA_MESH_OUTBOUND, PROXY_INIT_OUTPUT, …; not
/// the built-in chains that only jump there), and where it arrives, the proxy named as the
/// profile's mesh names it.
pub fn path_words(j: &Journey, profile: &Profile) -> String {
    let (proxy, _, _) = mesh_words(profile);
    let builtin = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
    let mut parts: Vec<String> = Vec::new();
    for h in &j.hops {
        parts.push(h.hook.to_string());
        for r in h.matched.iter().filter(|r| {
            r.table == sidecar_model::TableKind::Nat
                && !builtin.contains(&istio_chain(&r.chain).as_str())
        }) {
            parts.push(format!("{} rule {}", istio_chain(&r.chain), r.rule));
        }
        parts.push(match h.delivered_to {
            Delivery::Listener(p) => format!("{proxy} {p}"),
            Delivery::App(p) => format!("app {p}"),
            Delivery::Remote(a) => format!("remote {a}"),
            Delivery::Dropped => "dropped".into(),
        });
    }
    if j.outcome == Outcome::Loop {
        parts.push("LOOP".into());
    }
    parts.join(" -> ")
}

/// Why a claim and the model disagree, in one line; `None` when they agree.
pub fn disagreement(claim: &[ClaimedHop], seen: &[ClaimedHop]) -> Option<String> {
    for (i, (c, s)) in claim.iter().zip(seen).enumerate() {
        if let Some(rule) = c.istio_output_rule {
            if s.istio_output_rule != Some(rule) {
                return Some(match s.istio_output_rule {
                    Some(r) => format!(
                        "hop {}: ISTIO_OUTPUT rule {r} decides, not rule {rule}",
                        i + 1
                    ),
                    None => format!(
                        "hop {}: no ISTIO_OUTPUT rule is involved (the article names rule {rule})",
                        i + 1
                    ),
                });
            }
        }
        if c.arrives != s.arrives {
            return Some(format!(
                "hop {}: arrives at {}, not {}",
                i + 1,
                arrival(&s.arrives),
                arrival(&c.arrives)
            ));
        }
    }
    if claim.len() > seen.len() {
        let last = seen
            .last()
            .map_or("nowhere".to_string(), |s| arrival(&s.arrives));
        let next = claim.get(seen.len()).and_then(|c| c.istio_output_rule);
        return Some(match next {
            Some(r) => format!(
                "the journey ends at {last} after {} hop(s); the article goes on through ISTIO_OUTPUT rule {r}, which this connection never reaches",
                seen.len()
            ),
            None => format!("the journey ends at {last} after {} hop(s), the article's after {}", seen.len(), claim.len()),
        });
    }
    if claim.len() < seen.len() {
        return Some(format!(
            "the journey goes on after the article's last hop: {} hop(s), not {}",
            seen.len(),
            claim.len()
        ));
    }
    None
}

fn arrival(a: &ClaimedArrival) -> String {
    match a {
        ClaimedArrival::Listener(p) => format!("Envoy {p}"),
        ClaimedArrival::App => "the app".into(),
        ClaimedArrival::Remote => "the remote side".into(),
        ClaimedArrival::Dropped => "nowhere (dropped)".into(),
    }
}

/// One scenario's result.
#[derive(Debug, Serialize)]
pub struct ScenarioResult {
    /// The scenario.
    #[serde(flatten)]
    pub scenario: Scenario,
    /// The model's path in words.
    pub model_path: String,
    /// Whether the article's claim holds (`None` for cases the article leaves out).
    pub agrees: Option<bool>,
    /// Why not, in one line.
    pub why: Option<String>,
    /// The journey.
    pub journey: Journey,
}

/// Runs every scenario on a simulator (which learns the scenarios' services).
pub fn run_scenarios(sim: &mut Simulator) -> Vec<ScenarioResult> {
    sim.services = scenario_services(sim);
    scenarios(sim)
        .into_iter()
        .map(|sc| {
            let j = sim.journey(&sc.connection);
            let seen = observed(&j);
            let why = sc.claim.as_ref().and_then(|c| disagreement(c, &seen));
            ScenarioResult {
                agrees: sc.claim.as_ref().map(|_| why.is_none()),
                why,
                model_path: path_words(&j, &sim.profile),
                journey: j,
                scenario: sc,
            }
        })
        .collect()
}

/// The connections of every hop of every scenario, as flows for the kernel oracle.
pub fn scenario_flows(sim: &mut Simulator) -> Vec<Connection> {
    // The scenarios resolve a service VIP; the flows themselves need no such mapping after.
    let services = sim.services.clone();
    let mut out = Vec::new();
    for r in run_scenarios(sim) {
        out.extend(r.journey.hops.iter().map(HopReport::connection));
    }
    sim.services = services;
    out
}

/// The results for a person: the article named, per scenario the article's path, the model's,
/// and the verdict; then how many of the article's claims agree (or, for a profile of another
/// mesh, that they were not compared).
pub fn text(results: &[ScenarioResult], profile: &Profile) -> String {
    let mut out = format!(
        "scenarios of \"{}\" ({}): its six kinds of sidecar traffic and the cases it leaves out, with profile `{}`\n\n",
        ARTICLE.0, ARTICLE.1, profile.name
    );
    let compared = compares_article(profile);
    for r in results {
        let verdict = match r.agrees {
            Some(true) => "AGREE",
            Some(false) => "DISAGREE",
            None if compared => "(not in the article)",
            None => "(not compared)",
        };
        let fam = if r.scenario.family == Some(Family::Ipv6) {
            " [IPv6]"
        } else {
            ""
        };
        out.push_str(&format!("{}{fam} — {}\n", r.scenario.id, r.scenario.title));
        if !r.scenario.article_path.is_empty() {
            out.push_str(&format!("  article: {}\n", r.scenario.article_path));
        }
        out.push_str(&format!("  model:   {}\n", r.model_path));
        match &r.why {
            Some(w) => out.push_str(&format!("  {verdict}: {w}\n\n")),
            None => out.push_str(&format!("  {verdict}\n\n")),
        }
    }
    if compared {
        let agree = results.iter().filter(|r| r.agrees == Some(true)).count();
        let claims = results.iter().filter(|r| r.agrees.is_some()).count();
        out.push_str(&format!(
            "{agree} of the article's {claims} claims agree with the model\n"
        ));
    } else {
        out.push_str(&format!(
            "the article's claims are about Istio's sidecar: not compared under profile `{}` (built on `{}`)\n",
            profile.name, profile.base
        ));
    }
    out
}
