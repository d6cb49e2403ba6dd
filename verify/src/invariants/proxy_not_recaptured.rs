//! `proxy-not-recaptured`: the proxy's own connections are not sent back to its outbound
//! listener (which would loop them through the proxy forever), and those that leave the pod or
//! go to the loopback address are not sent to any of its listeners (the proxy's connection to a remote
//! address sent to its inbound listener, or its connection to an application bound on
//! 127.0.0.1 sent through 15006, are behaviour changes no other invariant sees: mutants of the
//! classic ruleset's ISTIO_OUTPUT rules 2 and 5 showed them).

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;
use sidecar_model::pod::{DnsUpstream, Profile};
use sidecar_model::Family;

use super::shared::proxy_uses;
use super::{Conditions, Dom, Invariant, Part, Words};

/// The proxy's listeners: the capture ports, every port it listens on, and its DNS listener.
fn listeners(p: &Profile) -> Vec<u16> {
    let mut v = vec![p.outbound_port, p.inbound_port];
    v.extend(&p.proxy_ports);
    v.extend(p.dns_capture_port);
    let mut seen = Vec::new();
    v.retain(|x| {
        let new = !seen.contains(x);
        seen.push(*x);
        new
    });
    v
}

/// No connection the proxy opens in the pod is redirected to the outbound port; none to a
/// non-local destination or to 127.0.0.1 (::1) is sent to any of its listeners.
///
/// These assertions are unsatisfiable if and only if no connection opened in the pod by the
/// proxy (as the profile identifies it) has its first hop redirected and delivered to the
/// outbound listener, or, while its destination is non-local or the loopback address 127.0.0.1
/// (::1), redirected and delivered to one of the proxy's listeners (capture ports,
/// `proxy_ports`, the DNS listener). A translation elsewhere (a DNAT to another remote address)
/// is not a capture, nor is a query to port 53 delivered to a DNS listener that forwards by
/// another protocol (`dns_upstream = "other"`).
pub struct ProxyNotRecaptured;

impl Invariant for ProxyNotRecaptured {
    const ID: &'static str = "proxy-not-recaptured";
    const NEEDS_JOURNEY: bool = false;
    const ALSO_USES: &'static [Part] = &[];

    fn statement(p: &Profile, w: &Words) -> String {
        let dns = match (p.dns_upstream, p.dns_capture_port) {
            (DnsUpstream::Other, Some(l)) => format!(
                " (but its DNS queries, which the DNS listener {l} answers without forwarding them as DNS)"
            ),
            _ => String::new(),
        };
        format!(
            "no connection opened by the proxy ({}) is redirected to the outbound port {}, and none to a non-local destination or to 127.0.0.1 / ::1 is sent to any of its listeners ({}){dns}",
            w.who,
            p.outbound_port,
            super::shared::list(&listeners(p))
        )
    }

    fn uses(p: &Profile) -> Vec<String> {
        let mut v = proxy_uses(p);
        v.push(format!("outbound_port = {}", p.outbound_port));
        v.push(format!("inbound_port = {}", p.inbound_port));
        v.push(format!(
            "proxy_ports = [{}]",
            super::shared::list(&p.proxy_ports)
        ));
        if let (DnsUpstream::Other, Some(l)) = (p.dns_upstream, p.dns_capture_port) {
            v.push(format!("dns_upstream = other (queries to 53 may reach {l})"));
        }
        v
    }

    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        let localhost: IpNet = match d.family() {
            Family::Ipv4 => IpNet::from(IpAddr::from([127, 0, 0, 1])),
            Family::Ipv6 => IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        };
        let to_a_listener = d.or(listeners(p).into_iter().map(|l| d.delivered(l)).collect());
        // A DNS listener that forwards by another protocol answers the proxy's own queries:
        // such a query reaching it is no recapture (`dns_upstream = "other"`).
        let answered = match (p.dns_upstream, p.dns_capture_port) {
            (DnsUpstream::Other, Some(l)) => d.and(vec![d.dport_is(53), d.delivered(l)]),
            _ => d.lit(false),
        };
        d.and(vec![
            d.not(answered),
            c.local.clone(),
            c.proxy.clone(),
            d.redirected(),
            d.or(vec![
                d.delivered(p.outbound_port),
                d.and(vec![
                    d.or(vec![d.not(d.dst_local()), d.dst_in(&localhost)]),
                    to_a_listener,
                ]),
            ]),
        ])
    }

    /// The proxy's connections opened in the pod.
    fn premise<D: Dom>(d: &D, _: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![c.local.clone(), c.proxy.clone()])
    }
}
