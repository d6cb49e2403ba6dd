//! `no-redirect-loop`: every journey ends (at an application, a remote address or a drop)
//! instead of going round through the proxy's listeners.

use sidecar_model::pod::Profile;

use super::shared::capture_ports;
use super::{Conditions, Dom, Invariant, Part, Words};

/// Every journey not addressed to the capture ports ends within the hop bound.
///
/// These assertions are unsatisfiable if and only if every journey whose first connection is
/// not addressed to one of the proxy's capture ports ends within the profile's `max_hops` hops
/// with no hop state repeating.
pub struct NoRedirectLoop;

impl Invariant for NoRedirectLoop {
    const ID: &'static str = "no-redirect-loop";
    const NEEDS_JOURNEY: bool = true;
    const ALSO_USES: &'static [Part] = &[];

    fn statement(p: &Profile, _: &Words) -> String {
        format!(
            "every journey not addressed to the proxy's capture ports {} and {} ends (app, remote or drop) within {} hops; no hop state repeats",
            p.outbound_port, p.inbound_port, p.max_hops
        )
    }

    fn uses(p: &Profile) -> Vec<String> {
        vec![format!("max_hops = {}", p.max_hops)]
    }

    fn violation<D: Dom>(d: &D, p: &Profile, _: &Conditions<D::B>) -> D::B {
        d.and(vec![d.not(d.dport_in(&capture_ports(p))), d.loops()])
    }

    /// Connections to a port other than the capture listeners.
    fn premise<D: Dom>(d: &D, p: &Profile, _: &Conditions<D::B>) -> D::B {
        d.not(d.dport_in(&capture_ports(p)))
    }
}
