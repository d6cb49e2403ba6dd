//! `outbound-captured`: the workload's connections leaving the pod reach the proxy's outbound
//! listener first, so that the mesh's policy and encryption apply to them.

use sidecar_model::pod::Profile;

use super::shared::{list, opt_list, proxy_uses};
use super::{Conditions, Dom, Invariant, Part, Words};

/// Every outbound TCP connection the profile captures is redirected to the outbound port.
///
/// These assertions are unsatisfiable if and only if every TCP connection that outbound capture
/// concerns ([`Conditions::outbound_pre`]: opened in the pod by a non-proxy process in the
/// profile's groups, or arriving on a virtual interface, for a non-local destination whose port
/// and address the profile captures and does not exclude; DNS the proxy's DNS listener takes
/// aside) has its first hop redirected and delivered to the outbound listener.
pub struct OutboundCaptured;

impl Invariant for OutboundCaptured {
    const ID: &'static str = "outbound-captured";
    const NEEDS_JOURNEY: bool = false;
    const ALSO_USES: &'static [Part] = &[
        Part::VirtualInterfaces,
        Part::OutboundGids,
        Part::ExcludeOutboundGids,
        Part::DnsCapturePort,
    ];

    fn statement(p: &Profile, w: &Words) -> String {
        format!(
            "every TCP connection opened by a non-proxy process ({}){} to a non-local destination whose port and address the profile does not exclude (ports {} excluding {}; addresses {} excluding {}) is redirected to {}{}{}",
            w.non_proxy,
            w.groups,
            opt_list(&p.outbound_ports),
            list(&p.exclude_outbound_ports),
            opt_list(&p.outbound_cidrs),
            list(&p.exclude_outbound_cidrs),
            p.outbound_port,
            w.dns,
            w.virt
        )
    }

    fn uses(p: &Profile) -> Vec<String> {
        let mut v = proxy_uses(p);
        v.extend([
            format!("outbound_port = {}", p.outbound_port),
            format!("outbound_ports = {}", opt_list(&p.outbound_ports)),
            format!(
                "exclude_outbound_ports = [{}]",
                list(&p.exclude_outbound_ports)
            ),
            format!("outbound_cidrs = {}", opt_list(&p.outbound_cidrs)),
            format!(
                "exclude_outbound_cidrs = [{}]",
                list(&p.exclude_outbound_cidrs)
            ),
        ]);
        v
    }

    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![
            c.outbound_pre.clone(),
            d.not(d.and(vec![d.redirected(), d.delivered(p.outbound_port)])),
        ])
    }

    /// The outbound connections capture concerns.
    fn premise<D: Dom>(_: &D, _: &Profile, c: &Conditions<D::B>) -> D::B {
        c.outbound_pre.clone()
    }
}
