//! `inbound-captured`: connections to the pod reach the proxy's inbound listener first, so that
//! the mesh's policy applies to them.

use sidecar_model::pod::Profile;

use super::shared::{list, opt_list};
use super::{Conditions, Dom, Invariant, Part, Words};

/// Every inbound TCP connection the profile captures is redirected to the inbound port.
///
/// These assertions are unsatisfiable if and only if every TCP connection arriving from outside
/// on an interface of the pod's own, from a source the profile does not exclude, for a pod
/// address and a port the profile captures and does not exclude, has its first hop redirected
/// and delivered to the inbound listener.
pub struct InboundCaptured;

impl Invariant for InboundCaptured {
    const ID: &'static str = "inbound-captured";
    const NEEDS_JOURNEY: bool = false;
    const ALSO_USES: &'static [Part] = &[Part::VirtualInterfaces, Part::ExcludeInboundCidrs];

    fn statement(p: &Profile, w: &Words) -> String {
        format!(
            "every inbound TCP connection{} to a port the profile does not exclude (captured: {}; excluded: {}) is redirected to {}",
            w.inbound_where,
            opt_list(&p.inbound_ports),
            list(&p.exclude_inbound_ports),
            p.inbound_port
        )
    }

    fn uses(p: &Profile) -> Vec<String> {
        vec![
            format!("inbound_port = {}", p.inbound_port),
            format!("inbound_ports = {}", opt_list(&p.inbound_ports)),
            format!(
                "exclude_inbound_ports = [{}]",
                list(&p.exclude_inbound_ports)
            ),
        ]
    }

    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![
            c.inbound_pre.clone(),
            d.not(d.and(vec![d.redirected(), d.delivered(p.inbound_port)])),
        ])
    }

    /// The inbound connections capture concerns (none when `inbound_ports` is empty).
    fn premise<D: Dom>(_: &D, _: &Profile, c: &Conditions<D::B>) -> D::B {
        c.inbound_pre.clone()
    }
}
