//! `proxy-not-recaptured`: the proxy's own connections are not sent back to its outbound
//! listener (which would loop them through the proxy forever), and those that leave the pod or
//! go to the loopback address are not captured at all (the proxy's connection to a remote
//! address sent to its inbound listener, or its connection to an application bound on
//! 127.0.0.1 sent through 15006, are behaviour changes no other invariant sees: mutants of the
//! classic ruleset's ISTIO_OUTPUT rules 2 and 5 showed them).

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;
use sidecar_model::pod::Profile;
use sidecar_model::Family;

use super::shared::proxy_uses;
use super::{Conditions, Dom, Invariant, Part, Words};

/// No connection the proxy opens in the pod is redirected to the outbound port; none to a
/// non-local destination or to 127.0.0.1 (::1) is redirected at all.
///
/// These assertions are unsatisfiable if and only if no connection opened in the pod by the
/// proxy (as the profile identifies it) has its first hop redirected and delivered to the
/// outbound listener, or redirected while its destination is non-local or the loopback address
/// 127.0.0.1 (::1).
pub struct ProxyNotRecaptured;

impl Invariant for ProxyNotRecaptured {
    const ID: &'static str = "proxy-not-recaptured";
    const NEEDS_JOURNEY: bool = false;
    const ALSO_USES: &'static [Part] = &[];

    fn statement(p: &Profile, w: &Words) -> String {
        format!(
            "no connection opened by the proxy ({}) is redirected to the outbound port {}, and none to a non-local destination or to 127.0.0.1 / ::1 is redirected at all",
            w.who, p.outbound_port
        )
    }

    fn uses(p: &Profile) -> Vec<String> {
        let mut v = proxy_uses(p);
        v.push(format!("outbound_port = {}", p.outbound_port));
        v
    }

    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        let localhost: IpNet = match d.family() {
            Family::Ipv4 => IpNet::from(IpAddr::from([127, 0, 0, 1])),
            Family::Ipv6 => IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        };
        d.and(vec![
            c.local.clone(),
            c.proxy.clone(),
            d.redirected(),
            d.or(vec![
                d.delivered(p.outbound_port),
                d.not(d.dst_local()),
                d.dst_in(&localhost),
            ]),
        ])
    }

    /// The proxy's connections opened in the pod.
    fn premise<D: Dom>(d: &D, _: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![c.local.clone(), c.proxy.clone()])
    }
}
