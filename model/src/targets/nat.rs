//! `REDIRECT`, `DNAT`, `SNAT` and `MASQUERADE`: address and port translation, in the nat table.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{print_flags, Given, TargetDef};
use crate::ast::{Family, Hook, NatRange, PortRange, TableKind, Target};
use crate::parse::lex::Token;
use crate::parse::rule::values::{parse_ip, parse_port_range};
use crate::parse::rule::{err_at, Res, RuleError, WithHelp};
use crate::print::{ip, ports};

/// `-j REDIRECT`.
pub(crate) const REDIRECT: TargetDef = TargetDef {
    name: "REDIRECT",
    options: &["--to-ports", "--to-port", "--random"],
    flags: &["--random"],
    verbatim: &[],
    port_options: &["--to-ports", "--to-port"],
    allowed: Some((TableKind::Nat, &[Hook::Prerouting, Hook::Output])),
    finish: finish_redirect,
};

/// `-j MASQUERADE`.
pub(crate) const MASQUERADE: TargetDef = TargetDef {
    name: "MASQUERADE",
    options: &["--to-ports", "--random", "--random-fully"],
    flags: &["--random", "--random-fully"],
    verbatim: &[],
    port_options: &["--to-ports"],
    allowed: Some((TableKind::Nat, &[Hook::Postrouting])),
    finish: finish_masquerade,
};

/// `-j DNAT`.
pub(crate) const DNAT: TargetDef = TargetDef {
    name: "DNAT",
    options: &["--to-destination", "--to", "--random", "--persistent"],
    flags: &["--random", "--persistent"],
    verbatim: &[],
    port_options: &["--to-destination", "--to"],
    allowed: Some((TableKind::Nat, &[Hook::Prerouting, Hook::Output])),
    finish: finish_dnat,
};

/// `-j SNAT`.
pub(crate) const SNAT: TargetDef = TargetDef {
    name: "SNAT",
    options: &[
        "--to-source",
        "--to",
        "--random",
        "--random-fully",
        "--persistent",
    ],
    flags: &["--random", "--random-fully", "--persistent"],
    verbatim: &[],
    port_options: &["--to-source", "--to"],
    allowed: Some((TableKind::Nat, &[Hook::Postrouting, Hook::Input])),
    finish: finish_snat,
};

/// `--to-ports` (or `--to-port`) of REDIRECT and MASQUERADE.
fn to_ports(g: &Given<'_>) -> Res<Option<PortRange>> {
    let pv = g.value("--to-ports").or_else(|| g.value("--to-port"));
    Ok(match pv {
        Some((v, t)) => {
            g.port_proto("`--to-ports`")?;
            Some(parse_port_range(t, v, '-').map_err(|e| RuleError {
                start: t.start,
                end: t.end,
                ..e
            })?)
        }
        None => None,
    })
}

fn finish_redirect(g: &Given<'_>) -> Res<Target> {
    Ok(Target::Redirect {
        ports: to_ports(g)?,
        random: g.has("--random"),
    })
}

fn finish_masquerade(g: &Given<'_>) -> Res<Target> {
    Ok(Target::Masquerade {
        ports: to_ports(g)?,
        random: g.has("--random"),
        random_fully: g.has("--random-fully"),
    })
}

/// The address range of DNAT's `--to-destination` or SNAT's `--to-source` (`opt`), or `--to`.
fn to(g: &Given<'_>, opt: &str) -> Res<NatRange> {
    let (v, _) = g
        .value(opt)
        .or_else(|| g.value("--to"))
        .ok_or_else(|| g.fail(format!("`{}` needs `{opt}`", g.name)))?;
    let t = g.value_token(if g.has(opt) { opt } else { "--to" }, v);
    let to = parse_nat_range(g.family, &t)?;
    if to.ports.is_some() {
        g.port_proto("a port")?;
    }
    Ok(to)
}

fn finish_dnat(g: &Given<'_>) -> Res<Target> {
    Ok(Target::Dnat {
        to: to(g, "--to-destination")?,
        random: g.has("--random"),
        persistent: g.has("--persistent"),
    })
}

fn finish_snat(g: &Given<'_>) -> Res<Target> {
    Ok(Target::Snat {
        to: to(g, "--to-source")?,
        random: g.has("--random"),
        random_fully: g.has("--random-fully"),
        persistent: g.has("--persistent"),
    })
}

fn parse_nat_range(family: Family, t: &Token) -> Res<NatRange> {
    let s = t.text.as_str();
    let bad = || {
        err_at(t, format!("invalid address range `{s}`"))
            .with_help("expected ADDR[-ADDR][:PORT[-PORT]], with [ADDR] for IPv6 and a port")
    };
    if family == Family::Ipv4
        && s.split('-')
            .any(|p| p.parse::<std::net::Ipv6Addr>().is_ok())
    {
        return Err(err_at(t, format!("IPv6 address `{s}` in an IPv4 rule"))
            .with_help("IPv6 rules belong to ip6tables (the second block of a file, after `ip6tables-save`)"));
    }
    let (addrs, ports) = if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or_else(bad)?;
        let ports = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad()),
        };
        (inner, ports)
    } else if family == Family::Ipv6 {
        (s, None)
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let (addr_lo, addr_hi) = if addrs.is_empty() {
        (None, None)
    } else {
        match addrs.split_once('-') {
            Some((a, b)) => (Some(parse_ip(family, t, a)?), Some(parse_ip(family, t, b)?)),
            None => (Some(parse_ip(family, t, addrs)?), None),
        }
    };
    let addr_hi = addr_hi.filter(|h| Some(*h) != addr_lo);
    let ports = match ports {
        Some(p) => Some(parse_port_range(t, p, '-')?),
        None => None,
    };
    Ok(NatRange {
        addr_lo,
        addr_hi,
        ports,
    })
}

/// A NAT range as the DNAT/SNAT extensions print it.
fn nat_range(r: &NatRange) -> String {
    let mut s = String::new();
    let v6 = matches!(r.addr_lo, Some(IpAddr::V6(_)));
    if let Some(lo) = r.addr_lo {
        let bracket = v6 && r.ports.is_some();
        if bracket {
            s.push('[');
        }
        s.push_str(&ip(lo));
        if let Some(hi) = r.addr_hi {
            s.push('-');
            s.push_str(&ip(hi));
        }
        if bracket {
            s.push(']');
        }
    }
    if let Some(p) = &r.ports {
        let _ = write!(s, ":{}", ports(p, '-'));
    }
    s
}

/// ` --to-ports P` when given.
fn print_to_ports(s: &mut String, p: &Option<PortRange>) {
    if let Some(p) = p {
        let _ = write!(s, " --to-ports {}", ports(p, '-'));
    }
}

pub(crate) fn print_redirect(s: &mut String, p: &Option<PortRange>, random: bool) {
    print_to_ports(s, p);
    print_flags(s, &[(random, "--random")]);
}

pub(crate) fn print_masquerade(
    s: &mut String,
    p: &Option<PortRange>,
    random: bool,
    random_fully: bool,
) {
    print_to_ports(s, p);
    print_flags(s, &[(random, "--random"), (random_fully, "--random-fully")]);
}

pub(crate) fn print_dnat(s: &mut String, to: &NatRange, random: bool, persistent: bool) {
    let _ = write!(s, " --to-destination {}", nat_range(to));
    print_flags(s, &[(random, "--random"), (persistent, "--persistent")]);
}

pub(crate) fn print_snat(
    s: &mut String,
    to: &NatRange,
    random: bool,
    random_fully: bool,
    persistent: bool,
) {
    let _ = write!(s, " --to-source {}", nat_range(to));
    print_flags(
        s,
        &[
            (random, "--random"),
            (random_fully, "--random-fully"),
            (persistent, "--persistent"),
        ],
    );
}
