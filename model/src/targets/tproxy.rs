//! `TPROXY --on-port P [--on-ip A] [--tproxy-mark V/M]`: deliver to a local socket without
//! changing the packet, in mangle PREROUTING.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{Given, TargetDef};
use crate::ast::{Family, Hook, MarkMask, Protocol, TableKind, Target};
use crate::parse::rule::values::{parse_ip, parse_mark_mask, parse_port};
use crate::parse::rule::{Res, RuleError};
use crate::print::ip;

/// `-j TPROXY`.
pub(crate) const TPROXY: TargetDef = TargetDef {
    name: "TPROXY",
    options: &["--on-port", "--on-ip", "--tproxy-mark"],
    flags: &[],
    verbatim: &[],
    port_options: &[],
    allowed: Some((TableKind::Mangle, &[Hook::Prerouting])),
    finish,
};

fn finish(g: &Given<'_>) -> Res<Target> {
    if !matches!(g.proto, Some(Protocol::TCP | Protocol::UDP)) {
        return Err(g.fail("`TPROXY` needs `-p tcp` or `-p udp`"));
    }
    let (pv, _) = g
        .value("--on-port")
        .ok_or_else(|| g.fail("`TPROXY` needs `--on-port`"))?;
    let on_port = parse_port(&g.value_token("--on-port", pv), pv)?;
    let on_ip = match g.value("--on-ip") {
        Some((v, t)) => {
            let ip = parse_ip(g.family, t, v)?;
            Some(ip).filter(|ip| !ip.is_unspecified())
        }
        None => None,
    };
    let mark = match g.value("--tproxy-mark") {
        Some((v, t)) => {
            parse_mark_mask(&g.value_token("--tproxy-mark", v), u32::MAX).map_err(|e| {
                RuleError {
                    start: t.start,
                    ..e
                }
            })?
        }
        None => MarkMask { value: 0, mask: 0 },
    };
    Ok(Target::Tproxy {
        on_port,
        on_ip,
        mark,
    })
}

pub(crate) fn print(
    s: &mut String,
    family: Family,
    on_port: u16,
    on_ip: Option<IpAddr>,
    mark: &MarkMask,
) {
    let unspecified = match family {
        Family::Ipv4 => "0.0.0.0".to_string(),
        Family::Ipv6 => "::".to_string(),
    };
    let _ = write!(
        s,
        " --on-port {on_port} --on-ip {} --tproxy-mark 0x{:x}/0x{:x}",
        on_ip.map_or(unspecified, ip),
        mark.value,
        mark.mask
    );
}
