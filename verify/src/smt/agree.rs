//! The encoding on one concrete packet: what it says the packet's hop does ([`fixed_hop`], the
//! SMT runner of the hop cases in `corpus/cases/`), and that checked against the evaluator
//! ([`hop_agrees`], what the test suite's property and the `smt` fuzz target run).

use std::net::SocketAddr;

use sidecar_model::eval::Packet;
use sidecar_model::pod::{Delivery, HopVerdict, Pod, Profile, RuleRef, Simulator};
use sidecar_model::{Family, Hook, Ruleset};
use z3::ast::Bool;

use super::{bits_addr, truth, value, Encoder, SymPacket};

/// What the encoding says a fixed packet's hop does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedHop {
    /// The rules hit, in order, with their hook.
    pub hits: Vec<RuleRef>,
    /// Dropped or rejected.
    pub dropped: bool,
    /// Rejected.
    pub rejected: bool,
    /// Delivered in the pod.
    pub local: bool,
    /// The port it was delivered to in the pod.
    pub port: u16,
    /// Its destination when it left the rules.
    pub final_dst: SocketAddr,
    /// Redirected (REDIRECT, DNAT or TPROXY).
    pub redirected: bool,
}

impl FixedHop {
    /// Where the hop arrived, in the evaluator's terms: a port of the profile's proxy is a
    /// listener, any other port in the pod the application's.
    pub fn delivery(&self, profile: &Profile) -> Delivery {
        if self.dropped {
            Delivery::Dropped
        } else if !self.local {
            Delivery::Remote(self.final_dst)
        } else if profile.proxy_ports.contains(&self.port) {
            Delivery::Listener(self.port)
        } else {
            Delivery::App(self.port)
        }
    }
}

/// Runs `pkt` (entering at `entry`) through the encoding of its family of `rs`, with
/// undecidable matches taken as not matching, as the evaluator takes them.
pub fn fixed_hop(
    rs: &Ruleset,
    (pod, profile): (&Pod, &Profile),
    entry: Hook,
    pkt: Packet,
) -> Result<FixedHop, String> {
    let family = pkt.family();
    let mut enc = Encoder::new(rs, family, pod, profile).map_err(|e| e.to_string())?;
    enc.undecided_free = false;
    let p = SymPacket::concrete(&pkt, &enc.ifaces, enc.width);
    let outside = Bool::from_bool(entry != Hook::Output);
    let hop = enc.hop(&p, &outside, true).map_err(|e| e.to_string())?;
    // Every term is closed (the packet is fixed and undecidable matches are false): evaluating
    // in an empty model is simplification, no search.
    let m = z3::Model::new();
    let hits = hop
        .hits
        .iter()
        .filter(|h| truth(&m, &h.fires))
        .map(|h| RuleRef {
            table: h.id.table,
            part: h.id.part,
            chain: rs
                .table_at(family, h.id.table, h.id.part)
                .and_then(|t| t.chains.get(h.id.chain))
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            rule: u32::try_from(h.id.rule + 1).unwrap_or(u32::MAX),
            hook: h.hook,
        })
        .collect();
    let dst = bits_addr(value(&m, &hop.final_dst), family);
    let dport = value(&m, &hop.final_dport) as u16;
    Ok(FixedHop {
        hits,
        dropped: truth(&m, &hop.dropped),
        rejected: truth(&m, &hop.rejected),
        local: truth(&m, &hop.local),
        port: value(&m, &hop.port) as u16,
        final_dst: SocketAddr::new(dst, dport),
        redirected: truth(&m, &hop.redirected()),
    })
}

/// Runs `pkt` (entering at `entry`) through the encoding ([`fixed_hop`]) and through
/// [`Simulator::hop_packet`]; describes the first difference in the rules hit (in order, with
/// their hook), drop/reject, delivery or redirection.
pub fn hop_agrees(
    rs: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    family: Family,
    entry: Hook,
    pkt: Packet,
) -> Result<(), String> {
    if pkt.family() != family {
        return Err(format!("{pkt:?} is not an {family:?} packet"));
    }
    let got = fixed_hop(rs, (pod, profile), entry, pkt)?;
    let sim = Simulator::new(rs, pod.clone(), profile.clone());
    let want = sim.hop_packet(entry, pkt);
    let ctx = || format!("{entry} {pkt:?}\n{}", sidecar_model::print_ruleset(rs));
    if got.hits != want.matched {
        return Err(format!(
            "hits: smt {:?} evaluator {:?}\n{}",
            got.hits,
            want.matched,
            ctx()
        ));
    }
    let ok = match want.delivered_to {
        Delivery::Dropped => got.dropped && (got.rejected == (want.verdict == HopVerdict::Reject)),
        Delivery::Listener(p) | Delivery::App(p) => !got.dropped && got.local && got.port == p,
        Delivery::Remote(a) => !got.dropped && !got.local && a == got.final_dst,
    };
    if !ok {
        return Err(format!(
            "delivery: evaluator {:?} ({:?}); smt {got:?}\n{}",
            want.delivered_to,
            want.verdict,
            ctx()
        ));
    }
    let want_redirect = matches!(
        want.verdict,
        HopVerdict::Redirect(_) | HopVerdict::Dnat(_) | HopVerdict::Tproxy(_)
    );
    if got.redirected != want_redirect {
        return Err(format!(
            "verdict: evaluator {:?}, smt redirected {}\n{}",
            want.verdict,
            got.redirected,
            ctx()
        ));
    }
    Ok(())
}
