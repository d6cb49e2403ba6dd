//! `proxy-not-recaptured`: the proxy's own connections are not sent back to its outbound
//! listener (which would loop them through the proxy forever).

use sidecar_model::pod::Profile;

use super::shared::proxy_uses;
use super::{Conditions, Dom, Invariant, Part, Words};

/// No connection the proxy opens in the pod is redirected to the outbound port.
///
/// These assertions are unsatisfiable if and only if no connection opened in the pod by the
/// proxy (by mark, or by uid or gid) has its first hop redirected and delivered to the outbound
/// listener.
pub struct ProxyNotRecaptured;

impl Invariant for ProxyNotRecaptured {
    const ID: &'static str = "proxy-not-recaptured";
    const NEEDS_JOURNEY: bool = false;
    const ALSO_USES: &'static [Part] = &[];

    fn statement(p: &Profile, w: &Words) -> String {
        format!(
            "no connection opened by the proxy ({}) is redirected to the outbound port {}",
            w.who, p.outbound_port
        )
    }

    fn uses(p: &Profile) -> Vec<String> {
        let mut v = proxy_uses(p);
        v.push(format!("outbound_port = {}", p.outbound_port));
        v
    }

    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![
            c.local.clone(),
            c.proxy.clone(),
            d.redirected(),
            d.delivered(p.outbound_port),
        ])
    }

    /// The proxy's connections opened in the pod.
    fn premise<D: Dom>(d: &D, _: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![c.local.clone(), c.proxy.clone()])
    }
}
