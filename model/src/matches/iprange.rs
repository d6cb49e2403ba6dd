//! `-m iprange`: the source or destination address within an inclusive range of addresses
//! (xt_iprange revision 1, IPv4 and IPv6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::{Env, Finish, GenCx, MatchModule, OptArgs, Take};
use crate::ast::{Family, Neg};
use crate::eval::Packet;
use crate::gen::{pick, PACKET_V4, PACKET_V6};
use crate::parse::lex::Token;
use crate::parse::rule::values::parse_numeric_ip;
use crate::parse::rule::{err_at, Res, WithHelp};
use crate::print::{ip, neg};

/// `-m iprange`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Iprange {
    /// `--src-range`.
    pub src: Option<Neg<AddrRange>>,
    /// `--dst-range`.
    pub dst: Option<Neg<AddrRange>>,
}

/// The addresses from `lo` to `hi`, both included, as the kernel stores them: a single address
/// is `lo == hi`, and a range whose `lo` is above its `hi` is kept (iptables warns that it "is
/// reversed and will never match", and loads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AddrRange {
    /// The first address.
    pub lo: IpAddr,
    /// The last address.
    pub hi: IpAddr,
}

impl AddrRange {
    /// Whether `a` lies in the range: compared as unsigned numbers, as xt_iprange does; an
    /// address of another family than the range's is never in it.
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.lo, self.hi, a) {
            (IpAddr::V4(lo), IpAddr::V4(hi), IpAddr::V4(a)) => lo <= a && a <= hi,
            (IpAddr::V6(lo), IpAddr::V6(hi), IpAddr::V6(a)) => lo <= a && a <= hi,
            _ => false,
        }
    }
}

/// `FROM-TO` or `FROM` (which is `FROM-FROM`), numeric addresses of the rule's family.
fn parse_range(family: Family, t: &Token) -> Res<AddrRange> {
    let s = t.text.as_str();
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    if lo.is_empty() || hi.is_empty() || hi.contains('-') {
        return Err(err_at(t, format!("invalid address range `{s}`")).with_help(
            "expected FROM-TO or a single address, e.g. 10.0.0.1-10.0.0.9 or fd00::1-fd00::9",
        ));
    }
    Ok(AddrRange {
        lo: parse_numeric_ip(family, t, lo)?,
        hi: parse_numeric_ip(family, t, hi)?,
    })
}

/// Prints ` [!] OPT LO-HI`.
fn print_range(s: &mut String, opt: &str, spec: &Option<Neg<AddrRange>>) {
    if let Some(n) = spec {
        neg(s, n.negated);
        s.push(' ');
        s.push_str(opt);
        s.push(' ');
        s.push_str(&ip(n.value.lo));
        s.push('-');
        s.push_str(&ip(n.value.hi));
    }
}

/// Whether a range test (if any) holds for `a`.
#[inline]
fn range_ok(spec: &Option<Neg<AddrRange>>, a: IpAddr) -> bool {
    spec.as_ref()
        .is_none_or(|n| n.value.contains(a) != n.negated)
}

/// A range around one of the addresses generated packets use, from the generator's number `k`:
/// that address alone, or from a little (or a lot) below it to a little above, now and then
/// reversed.
fn generate_range(family: Family, k: u32) -> AddrRange {
    let (anchor, max) = match family {
        Family::Ipv4 => (
            u128::from(u32::from(pick(&PACKET_V4, k))),
            u128::from(u32::MAX),
        ),
        Family::Ipv6 => (u128::from(pick(&PACKET_V6, k)), u128::MAX),
    };
    let lo = anchor.saturating_sub(pick(&[0, 1, 5, 1 << 24], k >> 4));
    let hi = anchor
        .saturating_add(pick(&[0, 1, 5, 0x100], k >> 6))
        .min(max);
    let (lo, hi) = if (k >> 8) % 8 == 0 {
        (hi, lo)
    } else {
        (lo, hi)
    };
    let addr = |v: u128| match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX))),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::from(v)),
    };
    AddrRange {
        lo: addr(lo),
        hi: addr(hi),
    }
}

impl MatchModule for Iprange {
    const NAME: &'static str = "iprange";
    const OPTIONS: &'static [&'static str] = &["--src-range", "--dst-range"];
    const GEN_SLOT: u32 = 14;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        let slot = match o.name() {
            "--src-range" => &mut self.src,
            "--dst-range" => &mut self.dst,
            _ => return Ok(Take::NotMine),
        };
        let (negated, family) = (o.negated(), o.family());
        *slot = Some(Neg::new(negated, parse_range(family, o.value()?)?));
        Ok(Take::Done)
    }

    fn finish(&self, cx: &Finish<'_>) -> Res<()> {
        if self.src.is_none() && self.dst.is_none() {
            return Err(cx.fail("match `iprange` needs `--src-range` or `--dst-range`"));
        }
        Ok(())
    }

    fn print(&self, s: &mut String) {
        print_range(s, "--src-range", &self.src);
        print_range(s, "--dst-range", &self.dst);
    }

    #[inline]
    fn eval(&self, p: &Packet, _env: &Env<'_>) -> Option<bool> {
        Some(range_ok(&self.src, p.src) && range_ok(&self.dst, p.dst))
    }

    fn generate(g: &GenCx<'_>) -> Option<Iprange> {
        let (v, s) = (g.v, g.s);
        let range = |negated: bool, k: u32| Neg::new(negated, generate_range(g.family, k));
        // v % 3: 0 the source only, 1 the destination only, 2 both.
        Some(Iprange {
            src: (v % 3 != 1).then(|| range(v & 4 == 4, s[8])),
            dst: (v % 3 != 0).then(|| range(v & 8 == 8, s[9])),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use super::*;
    use crate::print::print_rule_spec;

    /// Parses `-A OUTPUT SPEC` in a filter table of `family`; the rule's spec as printed, or
    /// the error's column and message.
    fn read(family: Family, spec: &str) -> Result<String, (usize, String)> {
        let header = match family {
            Family::Ipv4 => "",
            Family::Ipv6 => "# Generated by ip6tables-save v1.8.9\n",
        };
        let text = format!("{header}*filter\n-A OUTPUT {spec}\nCOMMIT\n");
        match crate::parse("t", text.as_bytes()) {
            Ok(p) => {
                let rule = &p.ruleset.tables(family)[0].chains[2].rules[0];
                Ok(print_rule_spec(family, rule).trim_start().to_string())
            }
            Err(e) => Err((e.column, e.message)),
        }
    }

    /// What `iptables-save` / `ip6tables-save` v1.8.9 (nf_tables) printed after
    /// `iptables-restore` of each input, in a scratch namespace on 2026-11-30: a single address
    /// as `A-A`, `--src-range` before `--dst-range`, `!` before its option, a reversed range as
    /// given, IPv6 as `inet_ntop` writes it.
    #[test]
    fn prints_as_iptables_save_does() {
        let cases = [
            (
                Family::Ipv4,
                "-m iprange --dst-range 10.1.0.5",
                "-m iprange --dst-range 10.1.0.5-10.1.0.5",
            ),
            (
                Family::Ipv4,
                "-m iprange ! --src-range 10.1.0.5 ! --dst-range 10.1.0.1-10.1.0.255",
                "-m iprange ! --src-range 10.1.0.5-10.1.0.5 ! --dst-range 10.1.0.1-10.1.0.255",
            ),
            (
                Family::Ipv4,
                "-m iprange --dst-range 10.1.0.1-10.1.0.255 --src-range 10.0.0.0-10.255.255.255",
                "-m iprange --src-range 10.0.0.0-10.255.255.255 --dst-range 10.1.0.1-10.1.0.255",
            ),
            (
                Family::Ipv4,
                "-m iprange --src-range 10.1.0.9-10.1.0.1",
                "-m iprange --src-range 10.1.0.9-10.1.0.1",
            ),
            (
                Family::Ipv6,
                "-m iprange ! --dst-range fd00::5 --src-range ::",
                "-m iprange --src-range ::-:: ! --dst-range fd00::5-fd00::5",
            ),
            (
                Family::Ipv6,
                "-m iprange --src-range FD00:0:0::0001-fd00::00ff",
                "-m iprange --src-range fd00::1-fd00::ff",
            ),
            (
                Family::Ipv6,
                "-m iprange --src-range ::ffff:10.1.0.5",
                "-m iprange --src-range ::ffff:10.1.0.5-::ffff:10.1.0.5",
            ),
            (
                Family::Ipv6,
                "-m iprange --src-range 2001:db8::1:0:0:1",
                "-m iprange --src-range 2001:db8::1:0:0:1-2001:db8::1:0:0:1",
            ),
        ];
        for (family, input, want) in cases {
            assert_eq!(read(family, input).as_deref(), Ok(want), "{input}");
        }
    }

    /// Inputs iptables-restore refuses (`Bad value for "--src-range" option`), refused at the
    /// range; and one it accepts that the model refuses, as it refuses `-s 10.1`: xtables reads
    /// `10.1` as 10.1.0.0, a form no mesh writes.
    #[test]
    fn refuses_what_iptables_refuses_at_the_range() {
        let cases = [
            (
                Family::Ipv4,
                "-m iprange --src-range localhost",
                "invalid address `localhost`",
            ),
            (
                Family::Ipv4,
                "-m iprange --src-range ! 10.1.0.1",
                "invalid address `!`",
            ),
            (
                Family::Ipv4,
                "-m iprange --src-range 10.1.0.1,10.1.0.5",
                "invalid address `10.1.0.1,10.1.0.5`",
            ),
            (
                Family::Ipv4,
                "-m iprange --src-range -10.1.0.9",
                "invalid address range `-10.1.0.9`",
            ),
            (
                Family::Ipv4,
                "-m iprange --src-range 10.1.0.1-10.1.0.2-10.1.0.3",
                "invalid address range `10.1.0.1-10.1.0.2-10.1.0.3`",
            ),
            (
                Family::Ipv4,
                "-m iprange --src-range 10.1.0.1-fd00::9",
                "IPv6 address `fd00::9` in an IPv4 rule",
            ),
            (
                Family::Ipv6,
                "-m iprange --src-range fd00::1%eth0",
                "invalid address `fd00::1%eth0`",
            ),
            (
                Family::Ipv6,
                "-m iprange --src-range fd00::1/64",
                "invalid address `fd00::1/64`",
            ),
            (
                Family::Ipv4,
                "-m iprange --src-range 10.1",
                "invalid address `10.1`",
            ),
        ];
        for (family, input, want) in cases {
            assert_eq!(read(family, input), Err((34, want.to_string())), "{input}");
        }
        assert_eq!(
            read(
                Family::Ipv4,
                "-m iprange --src-range 10.1.0.1 --src-range 10.1.0.2"
            ),
            Err((
                43,
                "option `--src-range` given more than once for match `iprange`".to_string()
            ))
        );
    }

    /// xt_iprange's test: `lo <= a <= hi` unsigned, per family, then `!`.
    #[test]
    fn evaluates_inclusively_per_family() {
        let r = |lo: &str, hi: &str| AddrRange {
            lo: lo.parse().unwrap(),
            hi: hi.parse().unwrap(),
        };
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let v4 = r("10.1.0.1", "10.1.0.9");
        for (addr, inside) in [
            ("10.1.0.0", false),
            ("10.1.0.1", true),
            ("10.1.0.5", true),
            ("10.1.0.9", true),
            ("10.1.0.10", false),
            ("::ffff:10.1.0.5", false),
        ] {
            assert_eq!(v4.contains(a(addr)), inside, "{addr}");
            let spec = Some(Neg::new(true, v4));
            assert_eq!(range_ok(&spec, a(addr)), !inside, "! {addr}");
        }
        let v6 = r("fd00::1", "fd00::1:0");
        for (addr, inside) in [
            ("fd00::", false),
            ("fd00::1", true),
            ("fd00::ffff", true),
            ("fd00::1:0", true),
            ("fd00::1:1", false),
            ("10.1.0.5", false),
        ] {
            assert_eq!(v6.contains(a(addr)), inside, "{addr}");
        }
        // Reversed: never in range.
        let rev = r("10.1.0.9", "10.1.0.1");
        assert!(["10.1.0.1", "10.1.0.5", "10.1.0.9"]
            .iter()
            .all(|s| !rev.contains(a(s))));
    }
}
