//! Values of options as iptables reads them: numbers, ports and port ranges, marks, interfaces,
//! protocols, addresses and prefixes. Shared by the generic options, the match modules
//! ([`crate::matches`]) and the targets.

use std::net::IpAddr;

use super::{err_at, Res, WithHelp};
use crate::ast::*;
use crate::parse::lex::Token;
use crate::print::PROTOCOL_NAMES;

pub(crate) fn parse_u64(t: &Token) -> Res<u64> {
    t.text
        .parse()
        .map_err(|_| err_at(t, format!("expected a counter, found `{}`", t.text)))
}

/// A number as strtoul reads it (decimal, `0x` hex, leading-zero octal).
pub(crate) fn parse_u32_tok(t: &Token) -> Res<u32> {
    parse_num(&t.text).ok_or_else(|| {
        err_at(
            t,
            format!("expected a number from 0 to 4294967295, found `{}`", t.text),
        )
    })
}

pub(crate) fn parse_num(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(h, 16).ok();
    }
    if s.len() > 1 && s.starts_with('0') {
        return u32::from_str_radix(s.get(1..)?, 8).ok();
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn parse_mark_mask(t: &Token, default_mask: u32) -> Res<MarkMask> {
    let bad = || {
        err_at(t, format!("invalid mark `{}`", t.text))
            .with_help("expected VALUE or VALUE/MASK, each 0 to 0xffffffff")
    };
    let (v, m) = match t.text.split_once('/') {
        Some((v, m)) => (v, Some(m)),
        None => (t.text.as_str(), None),
    };
    let value = parse_num(v).ok_or_else(bad)?;
    let mask = match m {
        Some(m) => parse_num(m).ok_or_else(bad)?,
        None => default_mask,
    };
    Ok(MarkMask { value, mask })
}

const SERVICES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("pop3", 110),
    ("ntp", 123),
    ("imap", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("imaps", 993),
    ("pop3s", 995),
    ("mysql", 3306),
    ("postgresql", 5432),
];

pub(crate) fn parse_port(t: &Token, s: &str) -> Res<u16> {
    if let Some((_, p)) = SERVICES.iter().find(|(n, _)| *n == s) {
        return Ok(*p);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = s.parse::<u32>() {
            if let Ok(p) = u16::try_from(n) {
                return Ok(p);
            }
        }
        return Err(err_at(t, format!("port `{s}` out of range (0 to 65535)")));
    }
    Err(err_at(t, format!("invalid port `{s}`"))
        .with_help("expected a number from 0 to 65535 or a service name"))
}

/// `a`, `a:b`, `a:` or `:b` (`sep` is `-` for targets' `--to-ports`).
pub(crate) fn parse_port_range(t: &Token, s: &str, sep: char) -> Res<PortRange> {
    match s.split_once(sep) {
        Some((lo, hi)) => {
            let lo = if lo.is_empty() { 0 } else { parse_port(t, lo)? };
            let hi = if hi.is_empty() {
                u16::MAX
            } else {
                parse_port(t, hi)?
            };
            if lo > hi {
                return Err(err_at(
                    t,
                    format!("port range `{s}` is empty (first port above last)"),
                ));
            }
            Ok(PortRange { lo, hi })
        }
        None => Ok(PortRange::single(parse_port(t, s)?)),
    }
}

pub(crate) fn port_range_opt(t: &Token, negated: bool) -> Res<Option<Neg<PortRange>>> {
    let r = parse_port_range(t, &t.text, ':')?;
    if r.is_any() && !negated {
        return Ok(None);
    }
    Ok(Some(Neg::new(negated, r)))
}

pub(crate) fn parse_iface(t: &Token) -> Res<Option<Iface>> {
    let s = t.text.as_str();
    if s.len() > 15 {
        return Err(err_at(
            t,
            format!("interface name `{s}` longer than 15 characters"),
        ));
    }
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c == '/' || c.is_control())
    {
        return Err(err_at(t, format!("invalid interface name `{s}`")));
    }
    if s == "+" {
        return Ok(None);
    }
    Ok(Some(Iface(s.to_string())))
}

pub(crate) fn parse_protocol(t: &Token) -> Res<Option<Protocol>> {
    let s: std::borrow::Cow<'_, str> = if t.text.bytes().any(|b| b.is_ascii_uppercase()) {
        t.text.to_ascii_lowercase().into()
    } else {
        t.text.as_str().into()
    };
    if s == "all" {
        return Ok(None);
    }
    let alias = match &*s {
        "icmpv6" => "ipv6-icmp",
        "ipv6-mh" | "mh" => "mobility-header",
        other => other,
    };
    if let Some((_, n)) = PROTOCOL_NAMES.iter().find(|(name, _)| *name == alias) {
        return Ok(Some(Protocol(*n)));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u8>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(Protocol(n))),
            Err(_) => Err(err_at(
                t,
                format!("protocol number `{s}` out of range (0 to 255)"),
            )),
        };
    }
    Err(err_at(t, format!("unknown protocol `{}`", t.text))
        .with_help("expected tcp, udp, icmp, icmpv6, sctp, all, or a number"))
}

/// The addresses of one `-s`/`-d`: mostly one, without a vector.
pub(crate) type Addresses = smallvec::SmallVec<[Cidr; 1]>;

/// An address as `-s`/`-d` read it: numeric, or `localhost` (`ip6-localhost`).
pub(crate) fn parse_ip(family: Family, t: &Token, s: &str) -> Res<IpAddr> {
    let named = match s {
        "localhost" if family == Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        "localhost" | "ip6-localhost" => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        _ => return parse_numeric_ip(family, t, s),
    };
    of_family(family, t, s, named)
}

/// A numeric address of `family` (no host names at all, as `-m iprange` reads its ranges).
pub(crate) fn parse_numeric_ip(family: Family, t: &Token, s: &str) -> Res<IpAddr> {
    let ip: IpAddr = s.parse().map_err(|_| {
        let mut e = err_at(t, format!("invalid address `{s}`"));
        e.help = Some(match family {
            Family::Ipv4 => {
                "expected an IPv4 address such as 10.0.0.1 (host names are not resolved)".into()
            }
            Family::Ipv6 => {
                "expected an IPv6 address such as fd00::1 (host names are not resolved)".into()
            }
        });
        e
    })?;
    of_family(family, t, s, ip)
}

/// `ip`, read from `s`, unless it is of the other family than the rule's.
fn of_family(family: Family, t: &Token, s: &str, ip: IpAddr) -> Res<IpAddr> {
    match (family, ip) {
        (Family::Ipv4, IpAddr::V6(_)) => Err(err_at(
            t,
            format!("IPv6 address `{s}` in an IPv4 rule"),
        )
        .with_help(
            "IPv6 rules belong to ip6tables (the second block of a file, after `ip6tables-save`)",
        )),
        (Family::Ipv6, IpAddr::V4(_)) => {
            Err(err_at(t, format!("IPv4 address `{s}` in an IPv6 rule")))
        }
        _ => Ok(ip),
    }
}

pub(crate) fn parse_addresses(family: Family, t: &Token) -> Res<Addresses> {
    let mut out = Addresses::new();
    for part in t.text.split(',') {
        let (addr, len) = match part.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (part, None),
        };
        let ip = parse_ip(family, t, addr)?;
        let width: u8 = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match len {
            None => width,
            Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
                let n: u32 = l.parse().unwrap_or(u32::MAX);
                if n > u32::from(width) {
                    return Err(err_at(t, format!("prefix length `/{l}` over {width}")));
                }
                u8::try_from(n).unwrap_or(width)
            }
            Some(l) => {
                // A dotted mask: only contiguous ones are supported.
                let m = match l.parse::<IpAddr>() {
                    Ok(m) if m.is_ipv4() == ip.is_ipv4() => m,
                    _ => {
                        return Err(err_at(t, format!("invalid mask `{l}`")).with_help(format!(
                            "expected a prefix length from 0 to {width} or a dotted mask"
                        )))
                    }
                };
                let bits: u128 = match m {
                    IpAddr::V4(m) => u128::from(u32::from(m)) << 96,
                    IpAddr::V6(m) => u128::from(m),
                };
                let ones = bits.leading_ones();
                if bits.checked_shl(ones).unwrap_or(0) != 0 {
                    return Err(err_at(t, format!("mask `{l}` is not contiguous"))
                        .with_help("give the mask as a prefix length, e.g. /16"));
                }
                u8::try_from(ones.min(u32::from(width))).unwrap_or(width)
            }
        };
        out.push(Cidr::new(ip, prefix));
    }
    Ok(out)
}
