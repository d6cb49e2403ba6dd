//! The encoding checked against the evaluator on one concrete packet: what the test suite's
//! property and the `smt` fuzz target run.

use sidecar_model::eval::Packet;
use sidecar_model::pod::{Delivery, HopVerdict, Pod, Profile, Simulator};
use sidecar_model::{Family, Hook, Ruleset};
use z3::ast::Bool;

use super::{bits_addr, truth, value, Encoder, SymPacket};

/// Runs `pkt` (entering at `entry`) through the encoding, with undecidable matches taken as not
/// matching, and through [`Simulator::hop_packet`]; describes the first difference in the rules
/// hit (in order, with their hook), drop/reject, delivery or redirection.
pub fn hop_agrees(
    rs: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    family: Family,
    entry: Hook,
    pkt: Packet,
) -> Result<(), String> {
    let mut enc = Encoder::new(rs, family, pod, profile).map_err(|e| e.to_string())?;
    enc.undecided_free = false;
    let sim = Simulator::new(rs, pod.clone(), profile.clone());
    let want = sim.hop_packet(entry, pkt);

    let p = SymPacket::concrete(&pkt, &enc.ifaces, enc.width);
    let outside = Bool::from_bool(entry != Hook::Output);
    let hop = enc.hop(&p, &outside, true).map_err(|e| e.to_string())?;
    // Every term is closed (the packet is fixed and undecidable matches are false): evaluating
    // in an empty model is simplification, no search.
    let m = z3::Model::new();
    let got: Vec<(String, String, u32, Hook)> = hop
        .hits
        .iter()
        .filter(|h| truth(&m, &h.fires))
        .map(|h| {
            let chain = rs
                .table(family, h.id.table)
                .and_then(|t| t.chains.get(h.id.chain))
                .map(|c| c.name.clone())
                .unwrap_or_default();
            (
                h.id.table.name().to_string(),
                chain,
                u32::try_from(h.id.rule + 1).unwrap_or(u32::MAX),
                h.hook,
            )
        })
        .collect();
    let expected: Vec<(String, String, u32, Hook)> = want
        .matched
        .iter()
        .map(|r| (r.table.name().to_string(), r.chain.clone(), r.rule, r.hook))
        .collect();
    let ctx = || format!("{entry} {pkt:?}\n{}", sidecar_model::print_ruleset(rs));
    if got != expected {
        return Err(format!(
            "hits: smt {got:?} evaluator {expected:?}\n{}",
            ctx()
        ));
    }
    let dropped = truth(&m, &hop.dropped);
    let rejected = truth(&m, &hop.rejected);
    let local = truth(&m, &hop.local);
    let port = value(&m, &hop.port) as u16;
    let dst = bits_addr(value(&m, &hop.final_dst), family);
    let dport = value(&m, &hop.final_dport) as u16;
    let ok = match want.delivered_to {
        Delivery::Dropped => dropped && (rejected == (want.verdict == HopVerdict::Reject)),
        Delivery::Listener(p) | Delivery::App(p) => !dropped && local && port == p,
        Delivery::Remote(a) => !dropped && !local && a == std::net::SocketAddr::new(dst, dport),
    };
    if !ok {
        return Err(format!(
            "delivery: evaluator {:?} ({:?}); smt dropped {dropped} rejected {rejected} local {local} port {port} dst {dst}:{dport}\n{}",
            want.delivered_to,
            want.verdict,
            ctx()
        ));
    }
    let redirected = truth(&m, &hop.redirected());
    let want_redirect = matches!(
        want.verdict,
        HopVerdict::Redirect(_) | HopVerdict::Dnat(_) | HopVerdict::Tproxy(_)
    );
    if redirected != want_redirect {
        return Err(format!(
            "verdict: evaluator {:?}, smt redirected {redirected}\n{}",
            want.verdict,
            ctx()
        ));
    }
    Ok(())
}
