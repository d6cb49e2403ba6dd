//! `dns`: when the profile captures DNS (`dns_capture_port`), the applications' queries reach
//! the proxy's DNS listener and nobody else's are captured back into it.
//!
//! - An application's DNS query (port 53, UDP or TCP, opened in the pod by a process that is
//!   neither the proxy nor the local resolver, and not from the passthrough address) to one of the profile's nameservers
//!   (`dns_servers`; none given: any address outside the pod the profile does not exclude,
//!   as ambient's probe address, and the pod's own addresses too with `dns_capture_local`) is
//!   redirected to the DNS listener.
//! - The proxy's own queries (any of its identities) are never redirected to the DNS listener:
//!   the listener forwards what it cannot answer as the proxy, and a forward captured back
//!   comes round again. A listener that forwards by another protocol (`dns_upstream =
//!   "other"`: consul-dataplane asks the Consul servers over gRPC) may answer them: no claim.
//! - A local resolver's (`dns_resolver_uid`: systemd-resolved, dnsmasq) queries to addresses
//!   that are not the pod's nameservers, its upstream, are never redirected to the DNS
//!   listener: the application asks the resolver through the proxy, the resolver asks upstream,
//!   and a capture of that upstream query sends it back to the proxy, which asks the resolver
//!   again (istio/istio #30309, fixed in Istio 1.9 by capturing only the resolv.conf
//!   nameservers).
//!
//! - No query to one of the profile's `dns_uncaptured_cidrs` (ambient: the loopback address,
//!   where a resolver of the pod's own listens), and, when the profile names its nameservers
//!   (`dns_servers`), no query to any other address, is redirected to the DNS listener.
//! - Nothing but DNS is: no connection opened in the pod to a port other than 53 is redirected
//!   to the DNS listener.
//!
//! The proxy's and the resolver's are what keeps a DNS query from looping: the model ends a journey at the DNS
//! listener (it does not follow the forward), so the loop is stated on the first hops that
//! would close it. Without DNS capture the invariant speaks about no connection.

use sidecar_model::pod::{DnsUpstream, InboundSource, Profile};

use super::shared::list;
use super::{Conditions, Dom, Invariant, Part, Words};

/// DNS queries reach the DNS listener when they should and never when they must not.
///
/// These assertions are unsatisfiable if and only if, when the profile captures DNS on port
/// `L`: every UDP or TCP connection to port 53 opened in the pod by a process that is not the
/// proxy and not the local resolver, not from the inbound re-connection's source, to one of
/// `dns_servers` (none given: to a non-local address not in `exclude_outbound_cidrs`), has its first hop redirected and delivered to `L`; and no connection to port 53
/// opened in the pod by the proxy, or by the local resolver to an address not among
/// `dns_servers`, or by anyone to an address in `dns_uncaptured_cidrs` or (when `dns_servers`
/// is given) not among `dns_servers`, and no connection opened in the pod to another port than
/// 53, has its first hop redirected and delivered to `L`. Without DNS capture they are
/// unsatisfiable (nothing to check).
pub struct Dns;

impl Dns {
    /// The nameservers' condition on the destination.
    fn to_nameserver<D: Dom>(d: &D, p: &Profile) -> D::B {
        match &p.dns_servers {
            Some(v) => d.or(v.iter().map(|a| d.dst_in(&(*a).into())).collect()),
            None => d.and(vec![
                if p.dns_capture_local {
                    d.lit(true)
                } else {
                    d.not(d.dst_local())
                },
                d.not(d.dst_in_any(&p.exclude_outbound_cidrs)),
                d.not(d.dst_in_any(&p.dns_uncaptured_cidrs)),
            ]),
        }
    }

    /// The local resolver's upstream queries: to an address that is not a nameserver.
    fn resolver<D: Dom>(d: &D, p: &Profile) -> D::B {
        p.dns_resolver_uid.map_or_else(
            || d.lit(false),
            |u| {
                let named = p
                    .dns_servers
                    .iter()
                    .flatten()
                    .map(|a| d.dst_in(&(*a).into()))
                    .collect();
                d.and(vec![d.uid_is(u), d.not(d.or(named))])
            },
        )
    }

    /// An application's query the first part speaks about.
    fn app_premise<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        let resolver = p
            .dns_resolver_uid
            .map_or_else(|| d.lit(false), |u| d.uid_is(u));
        // The inbound listener's re-connection is the proxy's, whoever the profile says opens it.
        let not_reconnection = match p.inbound_source {
            InboundSource::Passthrough => d.not(d.src_is(p.passthrough(d.family()))),
            InboundSource::Original => d.src_local(),
            // From the pod's own address, as the proxy: `non_proxy` leaves it out already.
            InboundSource::Route => d.lit(true),
        };
        d.and(vec![
            c.non_proxy.clone(),
            d.not(resolver),
            not_reconnection,
            Self::to_nameserver(d, p),
        ])
    }

    /// The queries that must not be captured: the proxy's, the resolver's upstream, and any to
    /// the profile's `dns_uncaptured_cidrs`.
    fn back_premise<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        let not_named = p.dns_servers.as_ref().map_or_else(
            || d.lit(false),
            |v| d.not(d.or(v.iter().map(|a| d.dst_in(&(*a).into())).collect())),
        );
        // A listener that forwards over another protocol answers the proxy's own queries too:
        // nothing of theirs can come round again, so the invariant makes no claim about them.
        let proxy = match p.dns_upstream {
            DnsUpstream::Dns => c.proxy.clone(),
            DnsUpstream::Other => d.lit(false),
        };
        d.or(vec![
            proxy,
            d.and(vec![c.non_proxy.clone(), Self::resolver(d, p)]),
            d.dst_in_any(&p.dns_uncaptured_cidrs),
            not_named,
        ])
    }

    /// The DNS queries the invariant speaks about: opened in the pod (UDP or TCP to port 53) by
    /// an application to a nameserver, or one of those `back_premise` names.
    fn queries<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![
            c.local.clone(),
            d.dport_is(53),
            d.or(vec![d.tcp(), d.udp()]),
            d.or(vec![Self::app_premise(d, p, c), Self::back_premise(d, p, c)]),
        ])
    }

    /// The connections the invariant speaks about: its DNS queries, and every connection
    /// opened in the pod to another port (none of which may reach the DNS listener); none
    /// without DNS capture.
    fn scope<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        if p.dns_capture_port.is_none() {
            return d.lit(false);
        }
        d.or(vec![
            Self::queries(d, p, c),
            d.and(vec![c.local.clone(), d.not(d.dport_is(53))]),
        ])
    }
}

impl Invariant for Dns {
    const ID: &'static str = "dns";
    const NEEDS_JOURNEY: bool = false;
    const ALSO_USES: &'static [Part] = &[];

    fn statement(p: &Profile, w: &Words) -> String {
        let Some(port) = p.dns_capture_port else {
            return "DNS is not captured (the profile sets no dns_capture_port): nothing to check"
                .into();
        };
        let servers = p.dns_servers.as_ref().map_or_else(
            || {
                if p.dns_capture_local {
                    "any address not excluded, the pod's own too".to_string()
                } else {
                    "any address outside the pod not excluded".to_string()
                }
            },
            |v| format!("the nameservers {}", list(v)),
        );
        let resolver = p.dns_resolver_uid.map_or_else(String::new, |u| {
            format!(" nor the local resolver's (uid {u}) queries to other addresses")
        });
        let (either, never) = if resolver.is_empty() {
            ("", "never")
        } else {
            ("neither ", "ever")
        };
        let back = match (p.dns_upstream, p.dns_resolver_uid) {
            (DnsUpstream::Dns, _) => format!(
                "{either}the proxy's own queries ({}){resolver} are {never} redirected there (no DNS query comes back round)",
                w.who
            ),
            // The listener forwards by another protocol: only the resolver's upstream can loop.
            (DnsUpstream::Other, None) => {
                "the proxy's own queries may reach it too (it forwards by another protocol)".into()
            }
            (DnsUpstream::Other, Some(u)) => format!(
                "the proxy's own queries may reach it too (it forwards by another protocol); the local resolver's (uid {u}) queries to other addresses never do"
            ),
        };
        let untouched = if p.dns_uncaptured_cidrs.is_empty() {
            String::new()
        } else {
            format!(
                "; no query to {} (a resolver of the pod's own) is redirected there",
                list(&p.dns_uncaptured_cidrs)
            )
        };
        let others = match (p.dns_servers.is_some(), p.dns_upstream) {
            (false, _) => "",
            (true, DnsUpstream::Dns) => ", nor a query to any other address",
            (true, DnsUpstream::Other) => "; no query to any other address is",
        };
        format!(
            "applications' DNS queries (UDP and TCP port 53, not from the inbound re-connection's source) to {servers} are redirected to the DNS listener {port}; {back}{untouched}{others}; nothing but port 53 is"
        )
    }

    fn uses(p: &Profile) -> Vec<String> {
        let Some(port) = p.dns_capture_port else {
            return vec!["dns_capture_port = none".into()];
        };
        let mut v = super::shared::proxy_uses(p);
        v.push(format!("dns_capture_port = {port}"));
        match &p.dns_servers {
            Some(s) => v.push(format!("dns_servers = [{}]", list(s))),
            None if !p.exclude_outbound_cidrs.is_empty() => v.push(format!(
                "exclude_outbound_cidrs = [{}]",
                list(&p.exclude_outbound_cidrs)
            )),
            None => {}
        }
        if let Some(u) = p.dns_resolver_uid {
            v.push(format!("dns_resolver_uid = {u}"));
        }
        if p.dns_capture_local {
            v.push("dns_capture_local = true".into());
        }
        if p.dns_upstream == DnsUpstream::Other {
            v.push("dns_upstream = other".into());
        }
        if !p.dns_uncaptured_cidrs.is_empty() {
            v.push(format!(
                "dns_uncaptured_cidrs = [{}]",
                list(&p.dns_uncaptured_cidrs)
            ));
        }
        v
    }

    fn premise<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        Self::scope(d, p, c)
    }

    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        let Some(port) = p.dns_capture_port else {
            return d.lit(false);
        };
        let to_listener = d.and(vec![d.redirected(), d.delivered(port)]);
        let ok = d.and(vec![
            d.or(vec![d.not(Self::app_premise(d, p, c)), to_listener.clone()]),
            d.or(vec![d.not(Self::back_premise(d, p, c)), d.not(to_listener.clone())]),
        ]);
        let other = d.and(vec![c.local.clone(), d.not(d.dport_is(53)), to_listener]);
        d.or(vec![
            d.and(vec![Self::queries(d, p, c), d.not(ok)]),
            other,
        ])
    }
}
