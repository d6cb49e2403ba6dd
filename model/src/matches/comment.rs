//! `-m comment --comment TEXT`: always holds; kept for the print.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Env, Finish, GenCx, MatchModule, OptArgs, Take};
use crate::eval::Packet;
use crate::gen::{pick, STRINGS};
use crate::parse::rule::{err_at, Res};
use crate::print::save_string;

/// `-m comment --comment`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Comment {
    /// The comment's text.
    pub text: String,
}

impl MatchModule for Comment {
    const NAME: &'static str = "comment";
    const OPTIONS: &'static [&'static str] = &["--comment"];
    const GEN_SLOT: u32 = 8;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        match o.name() {
            "--comment" => {
                if o.negated() {
                    return Err(o.fail("`--comment` cannot be negated"));
                }
                let v = o.value()?;
                if v.text.len() > 255 {
                    return Err(err_at(v, "comment longer than 255 bytes"));
                }
                self.text = v.text.as_str().to_owned();
            }
            _ => return Ok(Take::NotMine),
        }
        Ok(Take::Done)
    }

    fn finish(&self, cx: &Finish<'_>) -> Res<()> {
        if !cx.given("--comment") {
            return Err(cx.fail("match `comment` needs `--comment`"));
        }
        Ok(())
    }

    fn print(&self, s: &mut String) {
        let _ = write!(s, " --comment {}", save_string(&self.text));
    }

    #[inline]
    fn eval(&self, _p: &Packet, _env: &Env<'_>) -> Option<bool> {
        Some(true)
    }

    fn generate(g: &GenCx<'_>) -> Option<Comment> {
        Some(Comment {
            text: pick(STRINGS, g.v).to_string(),
        })
    }
}
