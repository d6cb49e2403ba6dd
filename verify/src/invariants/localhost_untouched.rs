//! `localhost-untouched`: the workload's connections to the loopback range stay in the pod as
//! they are (a sidecar must not break an application talking to itself).

use sidecar_model::pod::Profile;

use super::shared::proxy_uses;
use super::{Conditions, Dom, Invariant, Part, Words};

/// Non-proxy connections to the loopback range are never redirected.
///
/// These assertions are unsatisfiable if and only if no connection opened in the pod by a
/// non-proxy process for a loopback address has its first hop redirected (DNS the proxy's DNS
/// listener takes aside).
pub struct LocalhostUntouched;

impl Invariant for LocalhostUntouched {
    const ID: &'static str = "localhost-untouched";
    const NEEDS_JOURNEY: bool = false;
    const ALSO_USES: &'static [Part] = &[Part::DnsCapturePort];

    fn statement(_: &Profile, w: &Words) -> String {
        format!(
            "connections from non-proxy processes ({}) to the loopback range are never redirected{}",
            w.non_proxy, w.dns
        )
    }

    fn uses(p: &Profile) -> Vec<String> {
        proxy_uses(p)
    }

    fn violation<D: Dom>(d: &D, _: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![
            c.local.clone(),
            c.non_proxy.clone(),
            d.dst_loopback(),
            d.redirected(),
            d.not(c.dns_ok.clone()),
        ])
    }

    /// Non-proxy connections opened in the pod to loopback (but DNS the profile lets the
    /// proxy take).
    fn premise<D: Dom>(d: &D, _: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![
            c.local.clone(),
            c.non_proxy.clone(),
            d.dst_loopback(),
            d.not(c.dns_ok.clone()),
        ])
    }
}
