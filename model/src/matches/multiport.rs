//! `-m multiport`: up to 15 ports or ranges, of the source, the destination or either.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Env, Finish, GenCx, MatchModule, OptArgs, Take};
use crate::ast::{PortRange, Protocol};
use crate::eval::Packet;
use crate::gen::{pick, port_range};
use crate::parse::rule::values::parse_port_range;
use crate::parse::rule::{err_at, Res};
use crate::print::{neg, ports};

/// `-m multiport`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Multiport {
    /// `!` before the port list.
    pub negated: bool,
    /// Which ports are compared.
    pub dir: PortDir,
    /// The ports and ranges (at most 15 entries, a range counting twice).
    pub ports: Vec<PortRange>,
}

/// Which ports `-m multiport` looks at (`--dports` until an option says).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "lowercase")]
pub enum PortDir {
    /// `--sports`.
    Source,
    /// `--dports`.
    #[default]
    Destination,
    /// `--ports`: either.
    Either,
}

impl MatchModule for Multiport {
    const NAME: &'static str = "multiport";
    const OPTIONS: &'static [&'static str] = &[
        "--sports",
        "--source-ports",
        "--dports",
        "--destination-ports",
        "--ports",
    ];
    const ALIASES: &'static [(&'static str, &'static str)] = &[
        ("--source-ports", "--sports"),
        ("--destination-ports", "--dports"),
    ];
    const GEN_SLOT: u32 = 2;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        self.dir = match o.name() {
            "--sports" | "--source-ports" => PortDir::Source,
            "--dports" | "--destination-ports" => PortDir::Destination,
            "--ports" => PortDir::Either,
            _ => return Ok(Take::NotMine),
        };
        if !self.ports.is_empty() {
            return Err(o.fail("multiport can only have one port list"));
        }
        self.negated = o.negated();
        let v = o.value()?;
        let mut slots = 0;
        for part in v.text.split(',') {
            let r = parse_port_range(v, part, ':')?;
            slots += if r.lo == r.hi { 1 } else { 2 };
            self.ports.push(r);
        }
        if slots > 15 {
            return Err(err_at(
                v,
                "too many ports in a multiport list (at most 15, a range counting twice)",
            ));
        }
        Ok(Take::Done)
    }

    fn finish(&self, cx: &Finish<'_>) -> Res<()> {
        cx.need_proto(
            &[
                Protocol::TCP,
                Protocol::UDP,
                Protocol::SCTP,
                Protocol::DCCP,
                Protocol(136),
            ],
            "`-p tcp`, `-p udp`, `-p sctp`, `-p dccp` or `-p udplite`",
        )?;
        if self.ports.is_empty() {
            return Err(cx.fail("match `multiport` needs `--sports`, `--dports` or `--ports`"));
        }
        Ok(())
    }

    fn print(&self, s: &mut String) {
        neg(s, self.negated);
        let opt = match self.dir {
            PortDir::Source => "--sports",
            PortDir::Destination => "--dports",
            PortDir::Either => "--ports",
        };
        let list: Vec<String> = self.ports.iter().map(|p| ports(p, ':')).collect();
        let _ = write!(s, " {opt} {}", list.join(","));
    }

    #[inline]
    fn eval(&self, p: &Packet, _env: &Env<'_>) -> Option<bool> {
        let any = |v: u16| self.ports.iter().any(|r| r.contains(v));
        let hit = match self.dir {
            PortDir::Source => any(p.sport),
            PortDir::Destination => any(p.dport),
            PortDir::Either => any(p.sport) || any(p.dport),
        };
        Some(hit != self.negated)
    }

    fn generate(g: &GenCx<'_>) -> Option<Multiport> {
        let v = g.v;
        matches!(g.l4, Some(Protocol::TCP | Protocol::UDP)).then(|| Multiport {
            negated: v & 1 == 1,
            dir: pick(
                &[PortDir::Source, PortDir::Destination, PortDir::Either],
                v >> 1,
            ),
            ports: (0..(1 + v % 7))
                .map(|i| port_range(v.rotate_left(i * 5) ^ i))
                .collect(),
        })
    }
}
