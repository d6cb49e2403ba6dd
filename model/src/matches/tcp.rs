//! `-m tcp` and `-m udp`: ports (and TCP flags), loaded implicitly by `-p tcp` / `-p udp`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Env, Finish, GenCx, MatchModule, OptArgs, Take};
use crate::ast::{Neg, PortRange, Protocol};
use crate::eval::Packet;
use crate::gen::ports;
use crate::parse::lex::Token;
use crate::parse::rule::values::port_range_opt;
use crate::parse::rule::{err_at, Res, WithHelp};
use crate::print::{neg, port_opt};

/// `-m tcp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Tcp {
    /// `--sport`.
    pub sport: Option<Neg<PortRange>>,
    /// `--dport`.
    pub dport: Option<Neg<PortRange>>,
    /// `--tcp-flags` (and `--syn`).
    pub flags: Option<Neg<TcpFlags>>,
}

/// `-m udp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Udp {
    /// `--sport`.
    pub sport: Option<Neg<PortRange>>,
    /// `--dport`.
    pub dport: Option<Neg<PortRange>>,
}

/// The TCP flags of `--tcp-flags MASK COMP` (bits FIN=1, SYN=2, RST=4, PSH=8, ACK=16, URG=32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct TcpFlags {
    /// The flags examined.
    pub mask: u8,
    /// The flags that must be set among them.
    pub comp: u8,
}

/// The options whose unknown-option error says that they need `-p tcp` or `-p udp` first.
pub(crate) const PORT_OPTIONS: [&str; 6] = [
    "--dport",
    "--sport",
    "--destination-port",
    "--source-port",
    "--tcp-flags",
    "--syn",
];

const PORT_ALIASES: [(&str, &str); 2] = [
    ("--source-port", "--sport"),
    ("--destination-port", "--dport"),
];

/// `--sport` / `--dport` and their aliases; `false` when `o` is neither.
fn port_option(
    sport: &mut Option<Neg<PortRange>>,
    dport: &mut Option<Neg<PortRange>>,
    o: &mut OptArgs<'_, '_>,
) -> Res<bool> {
    let slot = match o.name() {
        "--sport" | "--source-port" => sport,
        "--dport" | "--destination-port" => dport,
        _ => return Ok(false),
    };
    *slot = port_range_opt(o.value()?, o.negated())?;
    Ok(true)
}

/// Whether a port test (if any) holds for `v`.
#[inline]
fn port_ok(r: &Option<Neg<PortRange>>, v: u16) -> bool {
    r.as_ref().is_none_or(|n| n.value.contains(v) != n.negated)
}

const TCP_FLAG_NAMES: [(&str, u8); 6] = [
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
];

fn tcp_flags(bits: u8) -> String {
    if bits == 0 {
        return "NONE".into();
    }
    let names: Vec<&str> = TCP_FLAG_NAMES
        .iter()
        .filter(|(_, b)| bits & b != 0)
        .map(|(n, _)| *n)
        .collect();
    names.join(",")
}

fn tcp_flag_list(t: &Token) -> Res<u8> {
    let mut bits = 0u8;
    for f in t.text.split(',') {
        bits |= match f {
            "ALL" => 0x3f,
            "NONE" => 0,
            other => match TCP_FLAG_NAMES.iter().find(|(n, _)| *n == other) {
                Some((_, b)) => *b,
                None => {
                    return Err(err_at(t, format!("unknown TCP flag `{other}`")).with_help(
                        "expected FIN, SYN, RST, PSH, ACK, URG, ALL or NONE, comma-separated",
                    ))
                }
            },
        };
    }
    Ok(bits)
}

impl MatchModule for Tcp {
    const NAME: &'static str = "tcp";
    const OPTIONS: &'static [&'static str] = &[
        "--sport",
        "--source-port",
        "--dport",
        "--destination-port",
        "--tcp-flags",
        "--syn",
        "--tcp-option",
    ];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[PORT_ALIASES[0], PORT_ALIASES[1], ("--syn", "--tcp-flags")];
    const REPEATED: &'static [(&'static str, &'static str)] = &[(
        "--tcp-flags",
        "`--tcp-flags` or `--syn` given more than once",
    )];
    const IMPLICIT_FOR: Option<Protocol> = Some(Protocol::TCP);
    const GEN_SLOT: u32 = 0;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        if port_option(&mut self.sport, &mut self.dport, o)? {
            return Ok(Take::Done);
        }
        let negated = o.negated();
        match o.name() {
            "--syn" => {
                self.flags = Some(Neg::new(
                    negated,
                    TcpFlags {
                        mask: 0x17,
                        comp: 0x02,
                    },
                ))
            }
            "--tcp-flags" => {
                let mask = tcp_flag_list(o.value()?)?;
                let comp = tcp_flag_list(o.value()?)?;
                self.flags = Some(Neg::new(negated, TcpFlags { mask, comp }));
            }
            "--tcp-option" => return Ok(Take::Unmodelled(1)),
            _ => return Ok(Take::NotMine),
        }
        Ok(Take::Done)
    }

    fn finish(&self, cx: &Finish<'_>) -> Res<()> {
        cx.need_proto(&[Protocol::TCP], "`-p tcp`")
    }

    fn print(&self, s: &mut String) {
        port_opt(s, "--sport", &self.sport);
        port_opt(s, "--dport", &self.dport);
        if let Some(f) = &self.flags {
            neg(s, f.negated);
            let _ = write!(
                s,
                " --tcp-flags {} {}",
                tcp_flags(f.value.mask),
                tcp_flags(f.value.comp)
            );
        }
    }

    #[inline]
    fn eval(&self, p: &Packet, _env: &Env<'_>) -> Option<bool> {
        Some(
            p.proto == 6
                && port_ok(&self.sport, p.sport)
                && port_ok(&self.dport, p.dport)
                && self
                    .flags
                    .as_ref()
                    .is_none_or(|f| ((p.tcp_flags & f.value.mask) == f.value.comp) != f.negated),
        )
    }

    fn generate(g: &GenCx<'_>) -> Option<Tcp> {
        let v = g.v;
        (g.l4 == Some(Protocol::TCP)).then(|| Tcp {
            sport: ports(v),
            dport: ports(v.rotate_left(11)),
            flags: (v % 4 == 0).then_some(Neg::new(
                v & 16 != 0,
                TcpFlags {
                    mask: (v >> 8) as u8 & 0x3f,
                    comp: (v >> 16) as u8 & 0x3f,
                },
            )),
        })
    }
}

impl MatchModule for Udp {
    const NAME: &'static str = "udp";
    const OPTIONS: &'static [&'static str] =
        &["--sport", "--source-port", "--dport", "--destination-port"];
    const ALIASES: &'static [(&'static str, &'static str)] = &PORT_ALIASES;
    const IMPLICIT_FOR: Option<Protocol> = Some(Protocol::UDP);
    const GEN_SLOT: u32 = 1;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        Ok(if port_option(&mut self.sport, &mut self.dport, o)? {
            Take::Done
        } else {
            Take::NotMine
        })
    }

    fn finish(&self, cx: &Finish<'_>) -> Res<()> {
        cx.need_proto(&[Protocol::UDP], "`-p udp`")
    }

    fn print(&self, s: &mut String) {
        port_opt(s, "--sport", &self.sport);
        port_opt(s, "--dport", &self.dport);
    }

    #[inline]
    fn eval(&self, p: &Packet, _env: &Env<'_>) -> Option<bool> {
        Some(p.proto == 17 && port_ok(&self.sport, p.sport) && port_ok(&self.dport, p.dport))
    }

    fn generate(g: &GenCx<'_>) -> Option<Udp> {
        let v = g.v;
        (g.l4 == Some(Protocol::UDP)).then(|| Udp {
            sport: ports(v),
            dport: ports(v.rotate_left(9)),
        })
    }
}
