//! The targets the model interprets (`-j NAME`): one file per target or family of targets, each
//! holding the target's name, options and which take no value, how it is built from the options
//! given (its checks), how it prints and where the kernel accepts it. [`TARGETS`] lists them
//! once; [`Target::def`] maps each variant of [`Target`] to its entry (an exhaustive `match`, so
//! a new variant does not compile without one). What a target does to a packet is control flow
//! and stays with the evaluator (`eval.rs`) and the encoder (`verify/src/smt`), each an
//! exhaustive `match`.
//!
//! # How to add a target
//!
//! 1. Add the variant to [`Target`] (`ast.rs`) and its name to `Target::name`.
//! 2. In a file here, a `pub(crate) const NAME: TargetDef` (name, options, options without a
//!    value, options that keep it verbatim, options carrying ports, where the kernel accepts
//!    it, and `finish`, which builds the variant from the options given) and its print
//!    function; add the const to [`TARGETS`] and the variant to [`Target::def`],
//!    `Target::print` and [`Target::turns_conntrack_on`] (exhaustive: the compiler asks).
//! 3. Its effect in `eval.rs` (`run_table`) and `verify/src/smt` (exhaustive `match`es).
//! 4. Generate it in `gen.rs` where the kernel accepts it.
//! 5. A line starting with its name in `fuzz/iptables.dict`.
//!
//! `model/tests/completeness.rs` fails until every entry of [`TARGETS`] is generated, prints and
//! parses back, is the entry `Target::def` gives for its variants, declares only its own options
//! as flags, verbatim or port options, and is in the dictionary; and while `unknown.rs` names it.

use std::fmt::Write as _;

use crate::ast::{Family, Hook, Protocol, TableKind, Target};
use crate::parse::lex::Token;
use crate::parse::rule::{err_at, Res, RuleError};
use crate::print::verbatim_arg;

mod ct;
mod log;
mod mark;
mod nat;
mod reject;
mod tproxy;
pub mod unknown;
mod verdict;

/// One target the model interprets: everything about `-j NAME` but its effect on a packet.
#[derive(Debug)]
pub struct TargetDef {
    /// The name after `-j`.
    pub name: &'static str,
    /// Every option, in the order "did you mean" tries them.
    pub options: &'static [&'static str],
    /// The options that take no value.
    pub flags: &'static [&'static str],
    /// Options the model does not interpret: given one, the target is kept verbatim.
    pub verbatim: &'static [&'static str],
    /// Options whose value may carry ports: `-p` is checked as it stands when they are read.
    pub port_options: &'static [&'static str],
    /// The table and hooks where the kernel accepts the target; `None`: everywhere.
    pub allowed: Option<(TableKind, &'static [Hook])>,
    /// The target from the options given, after its checks.
    pub finish: fn(&Given<'_>) -> Res<Target>,
}

/// Every target the model interprets (the order "did you mean" tries their names in).
pub const TARGETS: &[&TargetDef] = &[
    &verdict::ACCEPT,
    &verdict::DROP,
    &verdict::RETURN,
    &reject::REJECT,
    &nat::REDIRECT,
    &tproxy::TPROXY,
    &mark::MARK,
    &mark::CONNMARK,
    &ct::CT,
    &ct::NOTRACK,
    &nat::DNAT,
    &nat::SNAT,
    &nat::MASQUERADE,
    &log::LOG,
    &log::NFLOG,
];

impl TargetDef {
    /// The target called `name`, if the model interprets it.
    pub fn named(name: &str) -> Option<&'static TargetDef> {
        TARGETS.iter().copied().find(|t| t.name == name)
    }

    /// The options of the target called `name` (none for a chain or an unknown target).
    pub fn options_of(name: &str) -> &'static [&'static str] {
        TargetDef::named(name).map_or(&[], |t| t.options)
    }

    /// How many values `opt`, one of the target's options, takes.
    pub fn arity(&self, opt: &str) -> usize {
        usize::from(!self.flags.contains(&opt))
    }
}

/// The options given to a target, for its `finish`.
pub struct Given<'a> {
    pub(crate) name: &'a str,
    pub(crate) at: &'a Token<'a>,
    /// Each option given: its name, its values and the token of its last value (of the option
    /// itself when it takes none).
    pub(crate) vals: &'a [(&'a str, &'a [Token<'a>], &'a Token<'a>)],
    pub(crate) family: Family,
    /// The rule's `-p` (without `!`).
    pub(crate) proto: Option<Protocol>,
    /// `-p` (without `!`) as it stood when an option carrying ports was read.
    pub(crate) proto_then: Option<Protocol>,
}

impl Given<'_> {
    /// The first value of `opt` and the token of its last value, when given.
    pub fn value(&self, opt: &str) -> Option<(&str, &Token<'_>)> {
        self.vals
            .iter()
            .find(|(o, ..)| *o == opt)
            .map(|(_, v, t)| (v.first().map_or("", |t| t.text.as_str()), *t))
    }

    /// Whether `opt` was given.
    pub fn has(&self, opt: &str) -> bool {
        self.vals.iter().any(|(o, ..)| *o == opt)
    }

    /// The token of `opt`'s value, or of the target's name when not given.
    pub fn token(&self, opt: &str) -> &Token<'_> {
        self.value(opt).map_or(self.at, |(_, t)| t)
    }

    /// `text` at the place of `opt`'s value.
    pub fn value_token(&self, opt: &str, text: &str) -> Token<'static> {
        let t = self.token(opt);
        Token {
            text: text.to_string().into(),
            start: t.start,
            end: t.end,
        }
    }

    /// An error at the target's name.
    pub fn fail(&self, message: impl Into<String>) -> RuleError {
        err_at(self.at, message)
    }

    /// Requires a protocol with ports for the target's `what`.
    pub fn port_proto(&self, what: &str) -> Res<()> {
        if self.proto_then.is_some_and(Protocol::has_ports) {
            Ok(())
        } else {
            Err(self.fail(format!(
                "`{}` with {what} needs `-p tcp`, `-p udp`, `-p sctp` or `-p dccp`",
                self.name
            )))
        }
    }
}

/// Prints the flags among `flags` that are on, each led by a space.
fn print_flags(s: &mut String, flags: &[(bool, &str)]) {
    for (on, flag) in flags {
        if *on {
            s.push(' ');
            s.push_str(flag);
        }
    }
}

impl Target {
    /// The entry of [`TARGETS`] for this target; `None` for a jump, a goto or an unknown target.
    pub fn def(&self) -> Option<&'static TargetDef> {
        Some(match self {
            Target::Accept => &verdict::ACCEPT,
            Target::Drop => &verdict::DROP,
            Target::Return => &verdict::RETURN,
            Target::Reject { .. } => &reject::REJECT,
            Target::Redirect { .. } => &nat::REDIRECT,
            Target::Tproxy { .. } => &tproxy::TPROXY,
            Target::Mark(_) => &mark::MARK,
            Target::ConnmarkSet(_)
            | Target::ConnmarkSave { .. }
            | Target::ConnmarkRestore { .. } => &mark::CONNMARK,
            Target::Ct { .. } => &ct::CT,
            Target::Notrack => &ct::NOTRACK,
            Target::Dnat { .. } => &nat::DNAT,
            Target::Snat { .. } => &nat::SNAT,
            Target::Masquerade { .. } => &nat::MASQUERADE,
            Target::Log { .. } => &log::LOG,
            Target::Nflog { .. } => &log::NFLOG,
            Target::Jump { .. } | Target::Goto { .. } | Target::Unknown { .. } => return None,
        })
    }

    /// Prints ` -j NAME OPTIONS…` (` -g CHAIN` for a goto) as `iptables-save` does.
    pub(crate) fn print(&self, s: &mut String, family: Family) {
        if let Target::Goto { chain } = self {
            let _ = write!(s, " -g {chain}");
            return;
        }
        let _ = write!(s, " -j {}", self.name());
        match self {
            Target::Accept
            | Target::Drop
            | Target::Return
            | Target::Notrack
            | Target::Jump { .. }
            | Target::Goto { .. } => {}
            Target::Reject { with } => reject::print(s, with),
            Target::Redirect { ports, random } => nat::print_redirect(s, ports, *random),
            Target::Tproxy {
                on_port,
                on_ip,
                mark,
            } => tproxy::print(s, family, *on_port, *on_ip, mark),
            Target::Mark(m) | Target::ConnmarkSet(m) => mark::print_xmark(s, m),
            Target::ConnmarkSave { nfmask, ctmask } => {
                mark::print_connmark(s, "--save-mark", *nfmask, *ctmask)
            }
            Target::ConnmarkRestore { nfmask, ctmask } => {
                mark::print_connmark(s, "--restore-mark", *nfmask, *ctmask)
            }
            Target::Ct { notrack, zone } => ct::print(s, *notrack, zone),
            Target::Dnat {
                to,
                random,
                persistent,
            } => nat::print_dnat(s, to, *random, *persistent),
            Target::Snat {
                to,
                random,
                random_fully,
                persistent,
            } => nat::print_snat(s, to, *random, *random_fully, *persistent),
            Target::Masquerade {
                ports,
                random,
                random_fully,
            } => nat::print_masquerade(s, ports, *random, *random_fully),
            Target::Log {
                prefix,
                level,
                flags,
            } => log::print_log(s, prefix, *level, flags),
            Target::Nflog {
                prefix,
                group,
                size,
                threshold,
            } => log::print_nflog(s, prefix, *group, *size, *threshold),
            Target::Unknown { args, .. } => {
                for a in args {
                    s.push(' ');
                    s.push_str(&verbatim_arg(a));
                }
            }
        }
    }

    /// Whether a rule with this target makes the kernel track connections (see
    /// [`crate::eval::conntrack_active`]).
    pub fn turns_conntrack_on(&self) -> bool {
        match self {
            Target::Redirect { .. }
            | Target::Dnat { .. }
            | Target::Snat { .. }
            | Target::Masquerade { .. }
            | Target::ConnmarkSet(_)
            | Target::ConnmarkSave { .. }
            | Target::ConnmarkRestore { .. } => true,
            Target::Ct { notrack, .. } => !notrack,
            Target::Unknown { name, .. } => unknown::CONNTRACK_TARGETS.contains(&name.as_str()),
            Target::Accept
            | Target::Drop
            | Target::Return
            | Target::Jump { .. }
            | Target::Goto { .. }
            | Target::Reject { .. }
            | Target::Tproxy { .. }
            | Target::Mark(_)
            | Target::Notrack
            | Target::Log { .. }
            | Target::Nflog { .. } => false,
        }
    }
}
