//! `single-pass`: a captured connection goes through the proxy once, through the listener of
//! its direction, and never through the other (a second pass doubles the policy and the
//! telemetry, or sends inbound traffic out again).

use sidecar_model::pod::Profile;

use super::shared::capture_ports;
use super::{Conditions, Dom, Id, Invariant, Part, Words};

/// A captured journey passes the listener of its direction exactly once and the other never.
///
/// These assertions are unsatisfiable if and only if every journey not addressed to the
/// proxy's capture ports that outbound capture concerns ([`Conditions::outbound_pre`]) reaches
/// the outbound listener exactly once and the inbound one never, and every one that inbound
/// capture concerns ([`Conditions::inbound_pre`]) reaches the inbound listener exactly once and
/// the outbound one never.
pub struct SinglePass;

impl Invariant for SinglePass {
    const ID: &'static str = "single-pass";
    const NEEDS_JOURNEY: bool = true;
    const ALSO_USES: &'static [Part] = &[
        Part::VirtualInterfaces,
        Part::ExcludeInboundCidrs,
        Part::OutboundGids,
        Part::ExcludeOutboundGids,
        Part::DnsCapturePort,
    ];

    fn statement(p: &Profile, _: &Words) -> String {
        let (out, inb) = (p.outbound_port, p.inbound_port);
        format!(
            "an application's captured journey to a remote address passes {out} exactly once and {inb} never; a captured journey arriving from a remote address passes {inb} exactly once and {out} never (ports {out} and {inb} themselves aside)"
        )
    }

    /// What outbound and inbound capture use: it is both, followed through the journey.
    fn uses(p: &Profile) -> Vec<String> {
        let mut v = Id::OutboundCaptured.uses(p);
        v.extend(Id::InboundCaptured.uses(p));
        v
    }

    fn violation<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        let not_capture = d.not(d.dport_in(&capture_ports(p)));
        let out_ok = d.and(vec![
            d.passes(p.outbound_port, 1),
            d.passes(p.inbound_port, 0),
        ]);
        let in_ok = d.and(vec![
            d.passes(p.inbound_port, 1),
            d.passes(p.outbound_port, 0),
        ]);
        d.and(vec![
            not_capture,
            d.or(vec![
                d.and(vec![c.outbound_pre.clone(), d.not(out_ok)]),
                d.and(vec![c.inbound_pre.clone(), d.not(in_ok)]),
            ]),
        ])
    }

    /// Connections capture concerns (outbound or inbound) to a port other than the capture
    /// listeners.
    fn premise<D: Dom>(d: &D, p: &Profile, c: &Conditions<D::B>) -> D::B {
        d.and(vec![
            d.not(d.dport_in(&capture_ports(p))),
            d.or(vec![c.outbound_pre.clone(), c.inbound_pre.clone()]),
        ])
    }
}
