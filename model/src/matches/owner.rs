//! `-m owner`: the user, group or existence of the socket that sent a locally generated packet.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Env, Finish, GenCx, MatchModule, OptArgs, Take};
use crate::ast::{Hook, Neg};
use crate::eval::Packet;
use crate::gen::id;
use crate::parse::lex::Token;
use crate::parse::rule::{err_at, Res, WithHelp};
use crate::print::neg;

/// `-m owner`: the socket owner of a locally generated packet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Owner {
    /// `--uid-owner`.
    pub uid: Option<Neg<IdSpec>>,
    /// `--gid-owner`.
    pub gid: Option<Neg<IdSpec>>,
    /// `--socket-exists`.
    pub socket_exists: Option<Neg<()>>,
    /// `--suppl-groups`: `--gid-owner` also consults supplementary groups.
    pub suppl_groups: bool,
}

/// A user or group as `-m owner` takes it: numbers (or a range) or a name that only the node
/// running iptables can resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "lowercase")]
pub enum IdSpec {
    /// An inclusive numeric range (a single id is a range of one).
    Range {
        /// First id.
        lo: u32,
        /// Last id.
        hi: u32,
    },
    /// A user or group name, resolved by the node's passwd/group database.
    Name(String),
}

fn ids(i: &IdSpec) -> String {
    match i {
        IdSpec::Range { lo, hi } if lo == hi => lo.to_string(),
        IdSpec::Range { lo, hi } => format!("{lo}-{hi}"),
        IdSpec::Name(n) => n.clone(),
    }
}

fn parse_id(t: &Token) -> Res<IdSpec> {
    let s = t.text.as_str();
    let num = |x: &str| -> Option<u32> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        x.parse::<u32>().ok().filter(|n| *n != u32::MAX)
    };
    if let Some(n) = num(s) {
        return Ok(IdSpec::Range { lo: n, hi: n });
    }
    if let Some((a, b)) = s.split_once('-') {
        if let (Some(lo), Some(hi)) = (num(a), num(b)) {
            if lo > hi {
                return Err(err_at(t, format!("id range `{s}` is empty")));
            }
            return Ok(IdSpec::Range { lo, hi });
        }
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(err_at(t, format!("invalid id `{s}`"))
            .with_help("expected a number from 0 to 4294967294, a range `a-b`, or a name"));
    }
    if s.is_empty()
        || s.len() > 32
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':')
    {
        return Err(err_at(t, format!("invalid user or group name `{s}`")));
    }
    Ok(IdSpec::Name(s.to_string()))
}

impl MatchModule for Owner {
    const NAME: &'static str = "owner";
    const OPTIONS: &'static [&'static str] = &[
        "--uid-owner",
        "--gid-owner",
        "--socket-exists",
        "--suppl-groups",
    ];
    const HOOKS: Option<&'static [Hook]> = Some(&[Hook::Output, Hook::Postrouting]);
    const GEN_SLOT: u32 = 3;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        let negated = o.negated();
        match o.name() {
            "--uid-owner" => self.uid = Some(Neg::new(negated, parse_id(o.value()?)?)),
            "--gid-owner" => self.gid = Some(Neg::new(negated, parse_id(o.value()?)?)),
            "--socket-exists" => self.socket_exists = Some(Neg::new(negated, ())),
            "--suppl-groups" => {
                if negated {
                    return Err(o.fail("`--suppl-groups` cannot be negated"));
                }
                self.suppl_groups = true
            }
            _ => return Ok(Take::NotMine),
        }
        Ok(Take::Done)
    }

    fn finish(&self, cx: &Finish<'_>) -> Res<()> {
        if self.uid.is_none() && self.gid.is_none() && self.socket_exists.is_none() {
            return Err(
                cx.fail("match `owner` needs `--uid-owner`, `--gid-owner` or `--socket-exists`")
            );
        }
        Ok(())
    }

    fn print(&self, s: &mut String) {
        if let Some(n) = &self.socket_exists {
            neg(s, n.negated);
            s.push_str(" --socket-exists");
        }
        if let Some(n) = &self.uid {
            neg(s, n.negated);
            let _ = write!(s, " --uid-owner {}", ids(&n.value));
        }
        if let Some(n) = &self.gid {
            neg(s, n.negated);
            let _ = write!(s, " --gid-owner {}", ids(&n.value));
        }
        if self.suppl_groups {
            s.push_str(" --suppl-groups");
        }
    }

    #[inline]
    fn eval(&self, p: &Packet, _env: &Env<'_>) -> Option<bool> {
        // xt_owner: without a socket the match holds iff every given test is inverted.
        if !p.has_socket {
            let all_inverted = self.uid.as_ref().is_none_or(|n| n.negated)
                && self.gid.as_ref().is_none_or(|n| n.negated)
                && self.socket_exists.as_ref().is_none_or(|n| n.negated);
            return Some(all_inverted);
        }
        if let Some(n) = &self.uid {
            let IdSpec::Range { lo, hi } = &n.value else {
                return None;
            };
            if (*lo <= p.uid && p.uid <= *hi) == n.negated {
                return Some(false);
            }
        }
        if let Some(n) = &self.gid {
            let IdSpec::Range { lo, hi } = &n.value else {
                return None;
            };
            let inr = |g: u32| *lo <= g && g <= *hi;
            let m = inr(p.gid) || (self.suppl_groups && p.suppl_groups().iter().any(|g| inr(*g)));
            if m == n.negated {
                return Some(false);
            }
        }
        if let Some(n) = &self.socket_exists {
            if n.negated {
                return Some(false);
            }
        }
        Some(true)
    }

    fn generate(g: &GenCx<'_>) -> Option<Owner> {
        let (v, s) = (g.v, g.s);
        if !matches!(g.hook, Some(Hook::Output | Hook::Postrouting)) {
            return None;
        }
        let uid = (v % 3 != 0).then(|| Neg::new(v & 4 != 0, id(s[8])));
        let gid = (v % 5 < 3).then(|| Neg::new(v & 8 != 0, id(s[9])));
        let sock =
            (v % 7 == 0 || (uid.is_none() && gid.is_none())).then(|| Neg::new(v & 32 != 0, ()));
        Some(Owner {
            uid,
            gid,
            socket_exists: sock,
            suppl_groups: v & 64 != 0,
        })
    }
}
