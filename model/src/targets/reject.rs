//! `REJECT --reject-with TYPE`: drop with an error reply, in the filter table.

use std::fmt::Write as _;

use super::{Given, TargetDef};
use crate::ast::{Family, Hook, TableKind, Target};
use crate::parse::lex::Token;
use crate::parse::rule::{err_at, Res};

/// `-j REJECT`.
pub(crate) const REJECT: TargetDef = TargetDef {
    name: "REJECT",
    options: &["--reject-with"],
    flags: &[],
    verbatim: &[],
    port_options: &[],
    allowed: Some((
        TableKind::Filter,
        &[Hook::Input, Hook::Forward, Hook::Output],
    )),
    finish,
};

fn finish(g: &Given<'_>) -> Res<Target> {
    Ok(Target::Reject {
        with: match g.value("--reject-with") {
            Some((v, t)) => reject_with(g.family, v, t)?,
            None => match g.family {
                Family::Ipv4 => "icmp-port-unreachable".into(),
                Family::Ipv6 => "icmp6-port-unreachable".into(),
            },
        },
    })
}

/// The type as iptables-save prints it, from any of its spellings.
fn reject_with(family: Family, v: &str, t: &Token) -> Res<String> {
    let v4 = [
        ("icmp-net-unreachable", "icmp-net-unreachable"),
        ("net-unreach", "icmp-net-unreachable"),
        ("icmp-host-unreachable", "icmp-host-unreachable"),
        ("host-unreach", "icmp-host-unreachable"),
        ("icmp-proto-unreachable", "icmp-proto-unreachable"),
        ("proto-unreach", "icmp-proto-unreachable"),
        ("icmp-port-unreachable", "icmp-port-unreachable"),
        ("port-unreach", "icmp-port-unreachable"),
        ("icmp-net-prohibited", "icmp-net-prohibited"),
        ("net-prohib", "icmp-net-prohibited"),
        ("icmp-host-prohibited", "icmp-host-prohibited"),
        ("host-prohib", "icmp-host-prohibited"),
        ("tcp-reset", "tcp-reset"),
        ("tcp-rst", "tcp-reset"),
        ("icmp-admin-prohibited", "icmp-admin-prohibited"),
        ("admin-prohib", "icmp-admin-prohibited"),
    ];
    let v6 = [
        ("icmp6-no-route", "icmp6-no-route"),
        ("no-route", "icmp6-no-route"),
        ("icmp6-adm-prohibited", "icmp6-adm-prohibited"),
        ("adm-prohibited", "icmp6-adm-prohibited"),
        ("icmp6-addr-unreachable", "icmp6-addr-unreachable"),
        ("addr-unreach", "icmp6-addr-unreachable"),
        ("icmp6-port-unreachable", "icmp6-port-unreachable"),
        ("port-unreach", "icmp6-port-unreachable"),
        ("tcp-reset", "tcp-reset"),
        ("icmp6-policy-fail", "icmp6-policy-fail"),
        ("policy-fail", "icmp6-policy-fail"),
        ("icmp6-reject-route", "icmp6-reject-route"),
        ("reject-route", "icmp6-reject-route"),
    ];
    let table: &[(&str, &str)] = match family {
        Family::Ipv4 => &v4,
        Family::Ipv6 => &v6,
    };
    table
        .iter()
        .find(|(k, _)| *k == v)
        .map(|(_, c)| (*c).to_string())
        .ok_or_else(|| err_at(t, format!("unknown `--reject-with` type `{v}`")))
}

pub(crate) fn print(s: &mut String, with: &str) {
    let _ = write!(s, " --reject-with {with}");
}
