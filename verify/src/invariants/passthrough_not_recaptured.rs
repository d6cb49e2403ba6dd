//! `passthrough-not-recaptured`: the inbound listener's re-connection to the application is not
//! captured again (it would come back to the inbound listener, a loop).

use sidecar_model::pod::{InboundSource, Profile};

use super::shared::proxy_uses;
use super::{Conditions, Dom, Invariant, Part, Words};

/// The proxy's inbound re-connections over lo are never redirected.
///
/// These assertions are unsatisfiable if and only if no TCP connection opened in the pod that
/// leaves by lo and looks like the inbound listener's re-connection (from the passthrough
/// address; or, when the proxy re-connects from the client's own address, opened by the proxy
/// from a non-local source; or, when it binds no source (`route`), opened by the proxy from a
/// local one to a pod IP) has its first hop redirected.
pub struct PassthroughNotRecaptured;

impl Invariant for PassthroughNotRecaptured {
    const ID: &'static str = "passthrough-not-recaptured";
    const NEEDS_JOURNEY: bool = false;
    const ALSO_USES: &'static [Part] = &[];

    fn statement(p: &Profile, w: &Words) -> String {
        match p.inbound_source {
            InboundSource::Passthrough => format!(
                "TCP connections from {} / {} over lo are never redirected",
                p.passthrough_v4, p.passthrough_v6
            ),
            InboundSource::Original => format!(
                "the proxy's inbound re-connections (TCP, opened by the proxy ({}) over lo from a non-local source, the client's own address) are never redirected",
                w.who
            ),
            InboundSource::Route => format!(
                "the proxy's inbound re-connections (TCP, opened by the proxy ({}) over lo from the pod's own address to a pod IP) are never redirected",
                w.who
            ),
        }
    }

    fn uses(p: &Profile) -> Vec<String> {
        match p.inbound_source {
            InboundSource::Passthrough => vec![
                format!("passthrough_v4 = {}", p.passthrough_v4),
                format!("passthrough_v6 = {}", p.passthrough_v6),
            ],
            InboundSource::Original => {
                let mut v = proxy_uses(p);
                v.push("inbound_source = original".into());
                v
            }
            InboundSource::Route => {
                let mut v = proxy_uses(p);
                v.push("inbound_source = route".into());
                v
            }
        }
    }

    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![Self::premise(d, p, c), d.redirected()])
    }

    /// TCP connections opened in the pod from the passthrough source (or, re-connecting from
    /// the original client, the proxy's from a non-local source; or, binding no source, the
    /// proxy's from a local one to a pod IP, where inbound connections are addressed) leaving
    /// by lo. TCP: every mesh's inbound capture and listener are TCP, so are its
    /// re-connections (Kuma's UDP DNS redirect comes before its 127.0.0.6 RETURN, harmless:
    /// nothing sends UDP from there).
    fn premise<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![
            c.local.clone(),
            d.tcp(),
            match p.inbound_source {
                InboundSource::Passthrough => d.src_is(p.passthrough(d.family())),
                InboundSource::Original => d.and(vec![c.proxy.clone(), d.not(d.src_local())]),
                InboundSource::Route => d.and(vec![c.proxy.clone(), d.src_local(), d.dst_pod_ip()]),
            },
            d.out_lo(),
        ])
    }
}
