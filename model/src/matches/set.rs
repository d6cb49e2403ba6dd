//! `-m set --match-set NAME FLAGS`: membership in an ipset, which the ruleset cannot see (the
//! match is undecided).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Env, Finish, GenCx, MatchModule, OptArgs, Take};
use crate::eval::Packet;
use crate::gen::pick;
use crate::parse::rule::{err_at, Res, WithHelp};
use crate::print::{neg, verbatim_arg};

/// `-m set --match-set NAME FLAGS`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Set {
    /// `!` before `--match-set`.
    pub negated: bool,
    /// The set's name.
    pub name: String,
    /// The direction flags (`src`, `dst`), comma-separated as written.
    pub flags: String,
    /// Further options of the set match, verbatim.
    pub extra: Vec<String>,
}

impl MatchModule for Set {
    const NAME: &'static str = "set";
    const OPTIONS: &'static [&'static str] = &[
        "--match-set",
        "--set",
        "--return-nomatch",
        "--update-counters",
        "--update-subcounters",
        "--packets-eq",
        "--packets-lt",
        "--packets-gt",
        "--bytes-eq",
        "--bytes-lt",
        "--bytes-gt",
    ];
    const ALIASES: &'static [(&'static str, &'static str)] = &[("--set", "--match-set")];
    const GEN_SLOT: u32 = 12;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        let negated = o.negated();
        let opt = o.name();
        match opt {
            "--match-set" | "--set" => {
                self.negated = negated;
                let nt = o.value()?;
                if nt.text.is_empty() || nt.text.len() > 31 || nt.text.starts_with('-') {
                    return Err(err_at(nt, format!("invalid set name `{}`", nt.text))
                        .with_help("an ipset name has 1 to 31 characters"));
                }
                self.name = nt.text.as_str().to_owned();
                let ft = o.value()?;
                let dirs: Vec<&str> = ft.text.split(',').collect();
                if dirs.len() > 6 || !dirs.iter().all(|d| matches!(*d, "src" | "dst")) {
                    return Err(err_at(ft, format!("invalid set flags `{}`", ft.text))
                        .with_help("expected up to six of `src` and `dst`, comma-separated"));
                }
                self.flags = ft.text.as_str().to_owned();
            }
            "--return-nomatch" | "--update-counters" | "--update-subcounters" => {
                if negated {
                    self.extra.push("!".into());
                }
                self.extra.push(opt.to_string());
            }
            "--packets-eq" | "--packets-lt" | "--packets-gt" | "--bytes-eq" | "--bytes-lt"
            | "--bytes-gt" => {
                if negated {
                    self.extra.push("!".into());
                }
                self.extra.push(opt.to_string());
                self.extra.push(o.value()?.text.as_str().to_owned());
            }
            _ => return Ok(Take::NotMine),
        }
        Ok(Take::Done)
    }

    fn finish(&self, cx: &Finish<'_>) -> Res<()> {
        if self.name.is_empty() {
            return Err(cx.fail("match `set` needs `--match-set NAME FLAGS`"));
        }
        Ok(())
    }

    fn print(&self, s: &mut String) {
        neg(s, self.negated);
        let _ = write!(
            s,
            " --match-set {} {}",
            verbatim_arg(&self.name),
            verbatim_arg(&self.flags)
        );
        for a in &self.extra {
            s.push(' ');
            s.push_str(&verbatim_arg(a));
        }
    }

    #[inline]
    fn eval(&self, _p: &Packet, _env: &Env<'_>) -> Option<bool> {
        None
    }

    fn generate(g: &GenCx<'_>) -> Option<Set> {
        let v = g.v;
        Some(Set {
            negated: v & 1 == 1,
            name: pick(&["istio-inpod-probes-v4", "s1"], v >> 1).to_string(),
            flags: pick(&["src", "dst", "src,dst"], v >> 2).to_string(),
            extra: pick::<&[&str]>(
                &[&[], &["--return-nomatch"], &["!", "--update-counters"]],
                v >> 4,
            )
            .iter()
            .map(|a| a.to_string())
            .collect(),
        })
    }
}
