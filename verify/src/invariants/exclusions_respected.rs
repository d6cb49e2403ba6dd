//! `exclusions-respected`: what the profile excludes from capture is left alone (an excluded
//! port or range redirected anyway breaks the traffic the exclusion was made for).

use sidecar_model::pod::Profile;

use super::shared::{list, opt_list, within};
use super::{Conditions, Dom, Invariant, Part, Words};

/// Excluded ports, addresses, sources and groups are never redirected.
///
/// These assertions are unsatisfiable if and only if no connection has its first hop
/// redirected while it arrives from outside on an interface of the pod's own for an excluded
/// inbound port (or, TCP, from an excluded source), or is opened in the pod for a non-local
/// destination on an excluded outbound port or address, or by a process of an excluded group,
/// or outside what the profile's include lists (`inbound_ports`, `outbound_ports`,
/// `outbound_cidrs`, `outbound_gids`, when given) name (DNS the proxy's DNS listener takes aside).
pub struct ExclusionsRespected;

impl Invariant for ExclusionsRespected {
    const ID: &'static str = "exclusions-respected";
    const NEEDS_JOURNEY: bool = false;
    const ALSO_USES: &'static [Part] = &[
        Part::VirtualInterfaces,
        Part::ExcludeInboundCidrs,
        Part::ExcludeOutboundGids,
        Part::DnsCapturePort,
    ];

    fn statement(p: &Profile, w: &Words) -> String {
        let mut s = format!(
            "excluded ports and ranges are never redirected: inbound ports {}; outbound ports {} and addresses {} (to non-local destinations){}",
            list(&p.exclude_inbound_ports),
            list(&p.exclude_outbound_ports),
            list(&p.exclude_outbound_cidrs),
            w.dns
        );
        if !p.exclude_inbound_cidrs.is_empty() {
            s.push_str(&format!(
                "; inbound sources {}",
                list(&p.exclude_inbound_cidrs)
            ));
        }
        if !p.exclude_outbound_gids.is_empty() {
            s.push_str(&format!(
                "; outbound from groups {}",
                list(&p.exclude_outbound_gids)
            ));
        }
        if let Some(v) = &p.inbound_ports {
            s.push_str(&format!(
                "; nor inbound TCP connections to pod ports outside {}",
                list(v)
            ));
        }
        if p.outbound_ports.is_some() || p.outbound_cidrs.is_some() || p.outbound_gids.is_some() {
            s.push_str(&format!(
                "; nor outbound connections outside what is included (ports {}, addresses {}, groups {})",
                opt_list(&p.outbound_ports),
                opt_list(&p.outbound_cidrs),
                opt_list(&p.outbound_gids)
            ));
        }
        s
    }

    fn uses(p: &Profile) -> Vec<String> {
        let mut v = vec![
            format!(
                "exclude_inbound_ports = [{}]",
                list(&p.exclude_inbound_ports)
            ),
            format!(
                "exclude_outbound_ports = [{}]",
                list(&p.exclude_outbound_ports)
            ),
            format!(
                "exclude_outbound_cidrs = [{}]",
                list(&p.exclude_outbound_cidrs)
            ),
        ];
        if p.inbound_ports.is_some() {
            v.push(format!("inbound_ports = {}", opt_list(&p.inbound_ports)));
        }
        if p.outbound_ports.is_some() {
            v.push(format!("outbound_ports = {}", opt_list(&p.outbound_ports)));
        }
        if p.outbound_cidrs.is_some() {
            v.push(format!("outbound_cidrs = {}", opt_list(&p.outbound_cidrs)));
        }
        if p.outbound_gids.is_some() {
            v.push(format!("outbound_gids = {}", opt_list(&p.outbound_gids)));
        }
        v
    }

    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        // An excluded connection (the premise) that is redirected.
        d.and(vec![d.redirected(), Self::premise(d, p, c)])
    }

    /// Connections the profile excludes: from outside to an excluded port or (TCP) from an
    /// excluded source; opened in the pod for a non-local destination with an excluded port,
    /// address or group, or one an include list leaves out (none when the profile excludes
    /// nothing and includes everything).
    fn premise<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        d.or(vec![
            d.and(vec![
                c.inbound.clone(),
                d.or(vec![
                    d.dport_in(&p.exclude_inbound_ports),
                    d.and(vec![d.tcp(), d.src_in_any(&p.exclude_inbound_cidrs)]),
                    // A TCP port to a pod address outside the inbound include list.
                    d.and(vec![
                        d.tcp(),
                        d.dst_local(),
                        d.not(within(d, &p.inbound_ports, |v| d.dport_in(v))),
                    ]),
                ]),
            ]),
            // A VM's connection through a virtual interface to an address outside the outbound
            // include list (istio-iptables applies `-i` to it).
            d.and(vec![
                d.virtual_in(p),
                d.not(d.dst_local()),
                d.not(within(d, &p.outbound_cidrs, |v| d.dst_in_any(v))),
            ]),
            d.and(vec![
                c.local.clone(),
                d.not(d.dst_local()),
                d.not(c.dns_ok.clone()),
                d.or(vec![
                    d.dport_in(&p.exclude_outbound_ports),
                    d.dst_in_any(&p.exclude_outbound_cidrs),
                    d.gid_in(&p.exclude_outbound_gids),
                    // Outside an include list (none given: everything is included).
                    d.not(within(d, &p.outbound_ports, |v| d.dport_in(v))),
                    d.not(within(d, &p.outbound_cidrs, |v| d.dst_in_any(v))),
                    d.not(within(d, &p.outbound_gids, |v| d.gid_in(v))),
                ]),
            ]),
        ])
    }
}
