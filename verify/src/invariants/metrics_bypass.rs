//! `metrics-bypass`: the proxy's metrics and health ports are reached untouched from outside
//! (a scrape or a probe redirected to the inbound listener would be answered by the wrong
//! server, or not at all).

use sidecar_model::pod::Profile;

use super::shared::list;
use super::{Conditions, Dom, Invariant, Part, Words};

/// No inbound connection to a metrics or health port is redirected.
///
/// These assertions are unsatisfiable if and only if every TCP connection arriving from outside
/// on an interface of the pod's own, for a pod address and one of the profile's
/// `metrics_ports`, has its first hop delivered to that very port without being redirected.
pub struct MetricsBypass;

impl Invariant for MetricsBypass {
    const ID: &'static str = "metrics-bypass";
    const NEEDS_JOURNEY: bool = false;
    const ALSO_USES: &'static [Part] = &[Part::VirtualInterfaces];

    fn statement(p: &Profile, _: &Words) -> String {
        if p.metrics_ports.is_empty() {
            return "the profile promises no metrics or health port (metrics_ports is empty): nothing to bypass".into();
        }
        format!(
            "no inbound connection to {} is redirected; it reaches that port untouched",
            list(&p.metrics_ports)
        )
    }

    fn uses(p: &Profile) -> Vec<String> {
        vec![format!("metrics_ports = [{}]", list(&p.metrics_ports))]
    }

    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        let per_port = p
            .metrics_ports
            .iter()
            .map(|m| {
                d.and(vec![
                    d.dport_is(*m),
                    d.not(d.and(vec![d.not(d.redirected()), d.delivered(*m)])),
                ])
            })
            .collect();
        d.and(vec![c.inbound.clone(), d.tcp(), d.dst_local(), d.or(per_port)])
    }

    /// TCP connections from outside, on the pod's own interfaces, to a metrics port of a pod
    /// address (none when `metrics_ports` is empty).
    fn premise<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![
            c.inbound.clone(),
            d.tcp(),
            d.dst_local(),
            d.dport_in(&p.metrics_ports),
        ])
    }
}
