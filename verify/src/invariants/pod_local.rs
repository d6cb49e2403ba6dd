//! `pod-local`: what happens to the connections that stay inside the pod, addressed to its own
//! pod IP (an application's to loopback are `localhost-untouched`'s), as the profile says.
//!
//! - The proxy's own TCP connections (as it re-connects: `proxy_uid` and `proxy_gid`, or its
//!   mark) to an address of the pod other than the loopback address 127.0.0.1/::1 (a pod IP, or
//!   another address of 127.0.0.0/8, which Istio's `! -d 127.0.0.1/32 -o lo` rule treats as
//!   the pod IP; the loopback address itself is `proxy-not-recaptured`'s): with `pod_local_proxy = inbound` (Istio's sidecar) they pass the inbound
//!   listener exactly once and the outbound one never. This is the article's type 4 (an
//!   application calls a service of its own pod: 15001, then the proxy's connection to the pod
//!   IP goes through 15006 once, ISTIO_OUTPUT rule 2, then to the application); a ruleset
//!   without rule 2 sends it straight to the application, past the inbound policy, and one that
//!   captures it twice loops (istio/istio #14443). With `direct` (ambient) they are not
//!   captured. To the profile's `pod_local_direct_ports` (Istio since 1.18: 15008, its HBONE
//!   port, `! --dport 15008`) and, when DNS is captured, to port 53 (`! --dports 53,15008`)
//!   they are never captured. Aside: the capture ports themselves, the profile's
//!   `pod_local_exempt_ports` (built-in istio: 15008), its excluded outbound ports,
//!   and the inbound re-connection (from the passthrough address, or ambient's from a source
//!   outside the pod: `passthrough-not-recaptured`'s).
//! - An application's (non-proxy) connection to a pod IP is not captured (ISTIO_OUTPUT rule 3,
//!   `-o lo -m owner ! --uid-owner 1337 -j RETURN`; ambient's `! -d 127.0.0.1/32 -o lo -j
//!   ACCEPT`), a DNS query the profile's DNS listener takes aside (ambient and Istio's DNS
//!   capture send TCP to the pod IP's port 53 there). So say `istio`, `ambient`, `kuma` and
//!   `linkerd` (`pod_local_app = "direct"`); Consul's rules have no `-o lo` exception, so its
//!   profile says `outbound`: the outbound listener exactly once, the inbound one never.
//!
//! Which proxy identity: the one the proxy re-connects as ([`reconnecting_proxy`]). Whether
//! its other identities (a further uid, the gid alone) are treated alike is identity symmetry's
//! question, not this one's: in the classic ruleset a process of gid 1337 and another uid is
//! returned by rule 3 before the gid rules, so it is not captured to its own pod IP.

use std::net::IpAddr;

use sidecar_model::pod::{InboundSource, PodLocalApp, PodLocalProxy, Profile};
use sidecar_model::Family;

use super::shared::{capture_ports, list};
use super::{Conditions, Dom, Invariant, Part, Words};

/// The proxy's connections to its pod IP do what the profile says; the applications' are not
/// captured.
///
/// These assertions are unsatisfiable if and only if (1) every TCP connection the proxy opens
/// in the pod as it re-connects ([`reconnecting_proxy`]), from a pod address, to a local
/// address other than the loopback address (127.0.0.1, ::1), on a port that is not a capture
/// port, not exempt (`pod_local_exempt_ports`, `exclude_outbound_ports`) and, for Istio's
/// passthrough, not from the passthrough address, has its first hop not redirected when the
/// port is one of `pod_local_direct_ports` (or 53, with DNS capture), and otherwise passes the
/// inbound listener exactly once and the outbound listener never (`pod_local_proxy =
/// inbound`) or has its first hop not redirected (`direct`); and (2) no
/// connection opened in the pod by a non-proxy process to a pod IP has its first hop redirected,
/// DNS the proxy's DNS listener takes aside.
pub struct PodLocal;

/// The proxy as it opens its own connections: the identity it re-connects as (`proxy_uid` and
/// `proxy_gid` together, or its mark). The one place this invariant decides who the proxy is.
pub fn reconnecting_proxy<D: Dom>(d: &D, p: &Profile) -> D::B {
    match p.proxy_mark {
        Some(m) => d.mark_is(m, p.proxy_mark_mask),
        None => d.and(vec![d.uid_is(p.proxy_uid), d.gid_is(p.proxy_gid)]),
    }
}

/// `reconnecting_proxy` in words.
fn reconnecting_words(p: &Profile) -> String {
    match p.proxy_mark {
        Some(m) => format!("mark {m:#x}/{:#x}", p.proxy_mark_mask),
        None => format!("uid {} and gid {}", p.proxy_uid, p.proxy_gid),
    }
}

/// The ports of the pod IP the proxy's part makes no claim about, besides the capture ports.
fn exempt(p: &Profile) -> Vec<u16> {
    let mut v = p.pod_local_exempt_ports.clone();
    v.extend(&p.exclude_outbound_ports);
    v.sort_unstable();
    v.dedup();
    v
}

/// The ports the proxy's pod-local connections reach directly: `pod_local_direct_ports`, and
/// 53 with DNS capture (the DNS rules' business: Istio's pod-local redirect says `! --dports
/// 53,15008` then), but the exempt ones.
fn direct(p: &Profile) -> Vec<u16> {
    let aside = exempt(p);
    let mut v: Vec<u16> = p
        .pod_local_direct_ports
        .iter()
        .copied()
        .chain(p.dns_capture_port.map(|_| 53))
        .filter(|x| !aside.contains(x))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// An address of the pod other than its loopback (`loopback_cidr`, 127.0.0.1/32 by default;
/// ::1): a pod IP, or another address of 127.0.0.0/8.
fn to_pod<D: Dom>(d: &D, p: &Profile) -> D::B {
    let lo: ipnet::IpNet = match d.family() {
        Family::Ipv4 => p.loopback_cidr.into(),
        Family::Ipv6 => ipnet::IpNet::from(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    };
    d.and(vec![d.dst_local(), d.not(d.dst_in(&lo))])
}

impl PodLocal {
    /// The proxy's connections the first part speaks about.
    fn proxy_premise<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        let not_reconnection = match p.inbound_source {
            InboundSource::Passthrough => d.not(d.src_is(p.passthrough(d.family()))),
            InboundSource::Original | InboundSource::Route => d.lit(true),
        };
        d.and(vec![
            c.local.clone(),
            reconnecting_proxy(d, p),
            d.tcp(),
            d.src_local(),
            not_reconnection,
            to_pod(d, p),
            d.not(d.dport_in(&capture_ports(p))),
            d.not(d.dport_in(&exempt(p))),
        ])
    }

    /// The applications' connections the second part speaks about (through the outbound
    /// listener, `pod_local_app = "outbound"`: not those to a capture port, which loop in any
    /// such ruleset and are `no-redirect-loop`'s business).
    fn app_premise<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        let ports = match p.pod_local_app {
            PodLocalApp::Direct => d.lit(true),
            PodLocalApp::Outbound => d.not(d.dport_in(&capture_ports(p))),
        };
        d.and(vec![c.local.clone(), c.non_proxy.clone(), d.dst_pod_ip(), ports])
    }

    /// The connections the invariant speaks about: the proxy's (as it re-connects) and the
    /// applications' to a pod IP, as the first and second parts of the contract range.
    fn scope<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        d.or(vec![Self::proxy_premise(d, p, c), Self::app_premise(d, p, c)])
    }
}

impl Invariant for PodLocal {
    const ID: &'static str = "pod-local";
    const NEEDS_JOURNEY: bool = true;
    const ALSO_USES: &'static [Part] = &[Part::DnsCapturePort];

    fn statement(p: &Profile, w: &Words) -> String {
        let who = reconnecting_words(p);
        let mut aside = capture_ports(p).to_vec();
        aside.extend(exempt(p));
        aside.dedup();
        let proxy = match p.pod_local_proxy {
            PodLocalProxy::Inbound => format!(
                "pass the inbound listener {} exactly once and the outbound listener {} never",
                p.inbound_port, p.outbound_port
            ),
            PodLocalProxy::Direct => "are never redirected".to_string(),
        };
        let from = match p.inbound_source {
            InboundSource::Passthrough => format!(" (not from {})", p.passthrough_v4),
            InboundSource::Original | InboundSource::Route => String::new(),
        };
        let direct = direct(p);
        let direct = if direct.is_empty() {
            String::new()
        } else {
            format!(", those to ports {} are never redirected", list(&direct))
        };
        format!(
            "the proxy's TCP connections ({who}) from the pod{from} to its own pod IP or another loopback address (not {} or ::1) {proxy}{direct} (ports {} aside); connections from non-proxy processes ({}) to the pod IP {}{}",
            p.loopback_cidr,
            list(&aside),
            w.non_proxy,
            match p.pod_local_app {
                PodLocalApp::Direct => "are never redirected".to_string(),
                PodLocalApp::Outbound => format!(
                    "pass the outbound listener {} exactly once and the inbound listener {} never (TCP; UDP is never redirected)",
                    p.outbound_port, p.inbound_port
                ),
            },
            w.dns
        )
    }

    fn uses(p: &Profile) -> Vec<String> {
        let mut v = match p.proxy_mark {
            Some(m) => vec![
                format!("proxy_mark = {m:#x}"),
                format!("proxy_mark_mask = {:#x}", p.proxy_mark_mask),
            ],
            None => vec![
                format!("proxy_uid = {}", p.proxy_uid),
                format!("proxy_gid = {}", p.proxy_gid),
            ],
        };
        v.push(format!(
            "pod_local_proxy = {}",
            match p.pod_local_proxy {
                PodLocalProxy::Inbound => "inbound",
                PodLocalProxy::Direct => "direct",
            }
        ));
        if p.pod_local_app == PodLocalApp::Outbound {
            v.push("pod_local_app = outbound".into());
        }
        v.push(format!(
            "pod_local_exempt_ports = [{}]",
            list(&p.pod_local_exempt_ports)
        ));
        if !p.pod_local_direct_ports.is_empty() {
            v.push(format!(
                "pod_local_direct_ports = [{}]",
                list(&p.pod_local_direct_ports)
            ));
        }
        if !p.exclude_outbound_ports.is_empty() {
            v.push(format!(
                "exclude_outbound_ports = [{}]",
                list(&p.exclude_outbound_ports)
            ));
        }
        if p.loopback_cidr != Profile::istio().loopback_cidr {
            v.push(format!("loopback_cidr = {}", p.loopback_cidr));
        }
        v.push(format!("inbound_port = {}", p.inbound_port));
        v.push(format!("outbound_port = {}", p.outbound_port));
        if p.inbound_source == InboundSource::Passthrough {
            v.push(format!("passthrough_v4 = {}", p.passthrough_v4));
            v.push(format!("passthrough_v6 = {}", p.passthrough_v6));
        }
        v
    }

    fn premise<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        Self::scope(d, p, c)
    }

    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        let proxy_ok = match p.pod_local_proxy {
            PodLocalProxy::Inbound => d.and(vec![
                d.passes(p.inbound_port, 1),
                d.passes(p.outbound_port, 0),
            ]),
            PodLocalProxy::Direct => d.not(d.redirected()),
        };
        let direct = direct(p);
        let proxy_ok = d.or(vec![
            d.and(vec![d.dport_in(&direct), d.not(d.redirected())]),
            d.and(vec![d.not(d.dport_in(&direct)), proxy_ok]),
        ]);
        let app_ok = match p.pod_local_app {
            PodLocalApp::Direct => d.not(d.redirected()),
            // Only TCP is captured outbound: UDP stays uncaptured.
            PodLocalApp::Outbound => d.or(vec![
                d.and(vec![
                    d.tcp(),
                    d.passes(p.outbound_port, 1),
                    d.passes(p.inbound_port, 0),
                ]),
                d.and(vec![d.not(d.tcp()), d.not(d.redirected())]),
            ]),
        };
        let app_ok = d.or(vec![app_ok, c.dns_ok.clone()]);
        let ok = d.and(vec![
            d.or(vec![d.not(Self::proxy_premise(d, p, c)), proxy_ok]),
            d.or(vec![d.not(Self::app_premise(d, p, c)), app_ok]),
        ]);
        d.and(vec![Self::scope(d, p, c), d.not(ok)])
    }
}
