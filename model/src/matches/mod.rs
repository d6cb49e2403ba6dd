//! The `-m` match modules the model interprets: one file per module (or family of modules), each
//! holding the module's data, its name, options and aliases, how its options are parsed and
//! checked, how it prints, how it evaluates, where the kernel accepts it and how the generator
//! makes one. The list of modules is declared once, in [`match_modules!`](crate::match_modules),
//! which builds the [`Match`] enum, the parser's [`MODULES`] and every dispatch over matches; the
//! SMT encoding of each module sits together in `verify/src/smt/matches.rs`.
//!
//! # How to add a match module
//!
//! Say `-m length`, whose struct is `Length`; `iprange.rs` was added by these steps and is a
//! small example to copy. Steps 1 to 5 are enforced by the compiler or by a test, step 6 by a
//! test of its print only (the rest is a run you make and keep as data).
//!
//! 1. **Its file**, `model/src/matches/length.rs`: a struct `Length` whose fields are what
//!    `parse --json` shows after `"module": "length"`, deriving `Debug, Clone, Default,
//!    PartialEq, Eq, Serialize, Deserialize` and `cfg_attr(feature = "arbitrary",
//!    derive(arbitrary::Arbitrary))` (`Default`, derived or written, is the match before any
//!    option), and `impl MatchModule for Length`. The compiler asks for every item without a
//!    default: `NAME`, `OPTIONS`, `GEN_SLOT`, `option`, `finish`, `print`, `eval`, `generate`;
//!    set the optional ones that apply (`ALIASES`, `REPEATED`, `IMPLICIT_FOR`,
//!    `ADDRESS_OPTIONS` for options kept verbatim, `HOOKS`, `CONNTRACK`).
//!    - Values parse with `crate::parse::rule::values`, each error at the value's token. For
//!      addresses: `parse_ip(o.family(), …)` reads what `-s`/`-d` read (`localhost` too);
//!      `parse_numeric_ip` refuses host names, as xtables' `--src-range` and most match
//!      options do; both refuse an address of the other family as iptables does. Find out
//!      what iptables accepts and refuses by running it (`iptables-restore` in a scratch
//!      namespace), not from its man page.
//!    - `print` writes what `iptables-save` prints after `iptables-restore`, which is often not
//!      what was written (a single address of `--src-range` prints as `A-A`).
//!    - `generate` gets [`GenCx`]: the match's number, the rule's seed, hook, protocol and
//!      family. Make values around what generated packets carry (`gen::PACKET_V4`,
//!      `PACKET_V6`, the mesh's ports and ids), or step 3's comparison never sees the match
//!      both hold and fail. `GEN_SLOT` is the lowest selector no module uses (0 to 14 are
//!      taken, 13 by the unknown module). Never renumber one: committed seeds rely on them;
//!      the new slot changes only the rulesets whose selector picked it, which had no match
//!      there before.
//! 2. **This file**: `mod length;`, `pub use length::Length;` (and any type of its fields),
//!    and `Length => $crate::matches::Length,` at the end of the list in
//!    [`match_modules!`](crate::match_modules). Without the list entry `Length` is not
//!    `Into<Match>` and its `impl MatchModule` does not compile; the entry builds the `Match`
//!    variant (serialized as the variant's name lowercased), the parser's registry and every
//!    dispatch.
//! 3. **Its encoding**, `impl Encode for Length` in `verify/src/smt/matches.rs` (helpers it
//!    needs go in that file too): without it `verify` does not compile.
//!    `every_module_encodes_as_it_evaluates` there compares it with `eval` on generated rules
//!    and packets (at least 40 comparisons per module).
//! 4. **The fuzz dictionary**, `fuzz/iptables.dict`: a line `" -m length …"` (and its
//!    options).
//! 5. If `unknown.rs` names the module (its `ADDRESS_OPTIONS` or `CONNTRACK_MODULES`), take it
//!    out there (`iprange` was named there for its address options until it was added).
//! 6. **Against the kernel**: a ruleset using the module in `corpus/rulesets/` (with its
//!    expectations TOML, `verify/tests/check.rs`) and in `OWN_RULESETS` of
//!    `verify/tests/kernel_print.rs`, whose `the_kernel_comparison_covers_every_match_module`
//!    fails until one does; there `canonical_print_matches_iptables_save` compares the print
//!    with `iptables-save`, and `refusals_agree_with_the_kernel` takes inputs iptables-restore
//!    refuses. Hop cases in `corpus/cases/` on the edges of its values, their expectations
//!    recorded from the kernel (`corpus/cases/README.md`), and a run of
//!    `sidecar-verify kernel RULESET --flows 2000 --seed 1` with 0 disagreements whose random
//!    flows hit the module's rules. Errors: a file per refused input in
//!    `verify/tests/bad_input/`.
//!
//! `model/tests/completeness.rs` fails until steps 1, 2, 4 and 5 agree: every module is made
//! by the generator (over 150 generated rulesets), prints and parses back to itself, serializes
//! under its own name, has a `GEN_SLOT` of its own below 32, aliases and options that are its
//! own, a line in the dictionary, and no entry in `unknown.rs`. A module thus touches four
//! files of code (its own, this one, `verify/src/smt/matches.rs`, `fuzz/iptables.dict`), five
//! if `unknown.rs` named it, plus `values.rs` or `gen.rs` for a kind of value or a generator
//! input no module had before (`iprange` added `parse_numeric_ip` and the family in
//! [`GenCx`]); besides its tests, corpus and docs (`docs/model-and-parser.md` lists what
//! `iptables-save` prints differently from its input).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ast::{Family, Hook, Protocol};
use crate::eval::Packet;
use crate::gen::Seed;
use crate::parse::lex::Token;
use crate::parse::rule::{err_at, Args, Res, RuleError};

mod addrtype;
mod comment;
mod conntrack;
mod iprange;
mod mark;
mod multiport;
mod owner;
mod set;
mod socket;
mod statistic;
mod tcp;
pub mod unknown;

pub use addrtype::{AddrType, Addrtype};
pub use comment::Comment;
pub use conntrack::{Conntrack, CtState, State};
pub use iprange::{AddrRange, Iprange};
pub use mark::{Connmark, Mark};
pub use multiport::{Multiport, PortDir};
pub use owner::{IdSpec, Owner};
pub use set::Set;
pub use socket::Socket;
pub use statistic::{Statistic, StatisticMode};
pub(crate) use tcp::PORT_OPTIONS;
pub use tcp::{Tcp, TcpFlags, Udp};

/// Calls `$callback! { Variant => Type, … }` with every match module the model interprets, in
/// the order of the [`Match`] enum: the one list of modules. The model builds [`Match`],
/// [`MODULES`] and its dispatches from it; `verify` builds its encoding dispatch from it.
#[macro_export]
macro_rules! match_modules {
    ($callback:ident) => {
        $callback! {
            Tcp => $crate::matches::Tcp,
            Udp => $crate::matches::Udp,
            Multiport => $crate::matches::Multiport,
            Owner => $crate::matches::Owner,
            Mark => $crate::matches::Mark,
            Connmark => $crate::matches::Connmark,
            Conntrack => $crate::matches::Conntrack,
            State => $crate::matches::State,
            Comment => $crate::matches::Comment,
            Socket => $crate::matches::Socket,
            Addrtype => $crate::matches::Addrtype,
            Set => $crate::matches::Set,
            Statistic => $crate::matches::Statistic,
            Iprange => $crate::matches::Iprange,
        }
    };
}

/// One match module: everything the model knows about `-m NAME`. Its `Default` is the match as
/// `-m NAME` loads it, before any option.
pub trait MatchModule: Sized + Default + Into<Match> {
    /// The name after `-m`.
    const NAME: &'static str;
    /// Every option, aliases included, in the order "did you mean" tries them.
    const OPTIONS: &'static [&'static str];
    /// Other spellings of an option, as (alias, option): given under either, it counts once.
    const ALIASES: &'static [(&'static str, &'static str)] = &[];
    /// Messages for an option given twice, by option, when not the generic one.
    const REPEATED: &'static [(&'static str, &'static str)] = &[];
    /// The protocol whose `-p` loads this module implicitly (`-p tcp --dport 80`).
    const IMPLICIT_FOR: Option<Protocol> = None;
    /// Options kept verbatim whose value is an address or an address range: an address of the
    /// other family is refused, as iptables refuses it.
    const ADDRESS_OPTIONS: &'static [&'static str] = &[];
    /// The hooks where the kernel accepts the module; `None`: every hook.
    const HOOKS: Option<&'static [Hook]> = None;
    /// Whether a rule using the module makes the kernel track connections.
    const CONNTRACK: bool = false;
    /// The generator's selector for the module (see [`crate::gen`]); unique among modules.
    const GEN_SLOT: u32;

    /// Applies one of [`MatchModule::OPTIONS`], taking its values from `o`.
    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take>;
    /// The module's checks once the rule is read (options it needs, the protocol).
    fn finish(&self, cx: &Finish<'_>) -> Res<()>;
    /// Prints the options after ` -m NAME`, each led by a space, as `iptables-save` does.
    fn print(&self, s: &mut String);
    /// Whether the match holds for `p`; `None` when the model cannot decide it.
    fn eval(&self, p: &Packet, env: &Env<'_>) -> Option<bool>;
    /// The match from the generator's numbers, or `None` where it cannot go.
    fn generate(g: &GenCx<'_>) -> Option<Self>;
}

/// What a module did with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The option was applied.
    Done,
    /// The option is the module's but the model does not interpret it; it takes this many
    /// values, and the whole match is kept verbatim.
    Unmodelled(usize),
    /// Not the module's option.
    NotMine,
}

/// One option of a match being parsed: its token, its `!`, and the arguments after it.
pub struct OptArgs<'a, 't> {
    opt: &'t Token<'t>,
    negated: bool,
    family: Family,
    args: &'a mut Args<'t>,
}

impl<'a, 't> OptArgs<'a, 't> {
    pub(crate) fn new(
        opt: &'t Token<'t>,
        negated: bool,
        family: Family,
        args: &'a mut Args<'t>,
    ) -> OptArgs<'a, 't> {
        OptArgs {
            opt,
            negated,
            family,
            args,
        }
    }

    /// The option as written.
    pub fn name(&self) -> &'t str {
        self.opt.text.as_str()
    }

    /// The option's token.
    pub fn token(&self) -> &'t Token<'t> {
        self.opt
    }

    /// Whether a `!` stood before the option.
    pub fn negated(&self) -> bool {
        self.negated
    }

    /// The rule's family (an address of the other one is refused: `values::parse_ip`).
    pub fn family(&self) -> Family {
        self.family
    }

    /// The option's next value (an error at the option when there is none).
    pub fn value(&mut self) -> Res<&'t Token<'t>> {
        self.args.value(self.opt)
    }

    /// An error at the option.
    pub fn fail(&self, message: impl Into<String>) -> RuleError {
        err_at(self.opt, message)
    }
}

/// What a module's final checks see.
pub struct Finish<'a> {
    pub(crate) at: &'a Token<'a>,
    pub(crate) name: &'a str,
    pub(crate) proto: Option<Protocol>,
    /// The module's options ([`MatchModule::OPTIONS`]).
    pub(crate) options: &'a [&'static str],
    /// Those given: bit i for the i-th.
    pub(crate) seen: u64,
}

impl Finish<'_> {
    /// An error at the module's name.
    pub fn fail(&self, message: impl Into<String>) -> RuleError {
        err_at(self.at, message)
    }

    /// Whether the option `opt` (an entry of OPTIONS, not an alias) was given.
    pub fn given(&self, opt: &str) -> bool {
        self.options
            .iter()
            .position(|o| *o == opt)
            .is_some_and(|i| i < 64 && self.seen & (1 << i) != 0)
    }

    /// Requires a `-p` (not negated) among `want`; `what` names them in the error.
    pub fn need_proto(&self, want: &[Protocol], what: &str) -> Res<()> {
        if self.proto.is_some_and(|p| want.contains(&p)) {
            Ok(())
        } else {
            Err(self.fail(format!("match `{}` needs {what}", self.name)))
        }
    }
}

/// What evaluation knows besides the packet.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The addresses `-m addrtype` takes as LOCAL besides the loopback ranges.
    pub local: &'a [IpAddr],
}

/// The generator's numbers for one match of a rule (see [`crate::gen::build_rule`]).
#[derive(Debug, Clone, Copy)]
pub struct GenCx<'a> {
    /// This match's number.
    pub v: u32,
    /// The rule's seed.
    pub s: &'a Seed,
    /// The built-in chain's hook, `None` in a user chain.
    pub hook: Option<Hook>,
    /// The rule's protocol when given without `!`.
    pub l4: Option<Protocol>,
    /// The rule's family.
    pub family: Family,
}

/// What the parser needs of a module before it has one: an entry of [`MODULES`].
#[derive(Debug)]
pub struct Module {
    /// [`MatchModule::NAME`].
    pub name: &'static str,
    /// [`MatchModule::OPTIONS`].
    pub options: &'static [&'static str],
    /// [`MatchModule::ALIASES`].
    pub aliases: &'static [(&'static str, &'static str)],
    /// [`MatchModule::REPEATED`].
    pub repeated: &'static [(&'static str, &'static str)],
    /// [`MatchModule::IMPLICIT_FOR`].
    pub implicit_for: Option<Protocol>,
    /// [`MatchModule::ADDRESS_OPTIONS`].
    pub address_options: &'static [&'static str],
    /// [`MatchModule::GEN_SLOT`].
    pub gen_slot: u32,
    /// The match as `-m NAME` loads it, before any option (the module's `Default`).
    pub new: fn() -> Match,
}

impl Module {
    const fn of<M: MatchModule>() -> Module {
        Module {
            name: M::NAME,
            options: M::OPTIONS,
            aliases: M::ALIASES,
            repeated: M::REPEATED,
            implicit_for: M::IMPLICIT_FOR,
            address_options: M::ADDRESS_OPTIONS,
            gen_slot: M::GEN_SLOT,
            new: new_match::<M>,
        }
    }

    /// The module called `name`, if the model interprets it.
    pub fn named(name: &str) -> Option<&'static Module> {
        MODULES.iter().find(|m| m.name == name)
    }

    /// The module `-p PROTO` loads implicitly.
    pub fn implicit(proto: Protocol) -> Option<&'static Module> {
        MODULES.iter().find(|m| m.implicit_for == Some(proto))
    }

    /// The options of the module called `name` (none for a module the model does not know).
    pub fn options_of(name: &str) -> &'static [&'static str] {
        Module::named(name).map_or(&[], |m| m.options)
    }

    /// The option an option (or alias) counts as, for "given more than once".
    pub fn key(&self, opt: &str) -> &'static str {
        if let Some((_, k)) = self.aliases.iter().find(|(a, _)| *a == opt) {
            return k;
        }
        self.options
            .iter()
            .find(|o| **o == opt)
            .copied()
            .unwrap_or("?")
    }
}

fn new_match<M: MatchModule>() -> Match {
    M::default().into()
}

/// The type a [`Match`] variant holds its module in: the module itself, or a `Box` of it for the
/// four modules much larger than the common ones (`Owner`, `Addrtype`, `Set`, `Iprange`: 70 to
/// 80 bytes, where `Tcp`, `Comment` or `Statistic` take 16 to 24), so that every `Match` is not
/// as large as the largest module (docs/scale.md, "Parse speed").
macro_rules! held {
    (Owner, $ty:ty) => { Box<$ty> };
    (Addrtype, $ty:ty) => { Box<$ty> };
    (Set, $ty:ty) => { Box<$ty> };
    (Iprange, $ty:ty) => { Box<$ty> };
    ($variant:ident, $ty:ty) => { $ty };
}

macro_rules! define_match {
    ($($variant:ident => $ty:ty),* $(,)?) => {
        /// One `-m` match: a module the model interprets (one variant each, its data in
        /// [`crate::matches`]) or one it keeps verbatim.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        #[serde(tag = "module", rename_all = "lowercase")]
        pub enum Match {
            $(
                #[doc = concat!("The module [`", stringify!($variant), "`].")]
                $variant(held!($variant, $ty)),
            )*
            /// A match the model does not interpret, kept verbatim so it prints back unchanged.
            Unknown {
                /// The module name after `-m`.
                name: String,
                /// Its arguments, as tokens.
                args: Vec<String>,
            },
        }

        $(
            impl From<$ty> for Match {
                fn from(m: $ty) -> Match {
                    Match::$variant(m.into())
                }
            }
        )*

        /// Every module the model interprets, in the order of [`Match`].
        pub const MODULES: &[Module] = &[$(Module::of::<$ty>(),)*];

        impl Match {
            /// The module's name after `-m`.
            pub fn name(&self) -> &str {
                match self {
                    $(Match::$variant(_) => <$ty as MatchModule>::NAME,)*
                    Match::Unknown { name, .. } => name,
                }
            }

            /// Applies an option of the module (see [`MatchModule::option`]).
            pub(crate) fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
                match self {
                    $(Match::$variant(m) => m.option(o),)*
                    Match::Unknown { .. } => Ok(Take::NotMine),
                }
            }

            /// The module's final checks (see [`MatchModule::finish`]).
            pub(crate) fn finish(&self, cx: &Finish<'_>) -> Res<()> {
                match self {
                    $(Match::$variant(m) => m.finish(cx),)*
                    Match::Unknown { .. } => Ok(()),
                }
            }

            /// Prints ` -m NAME` and the options, as `iptables-save` does.
            pub(crate) fn print(&self, s: &mut String) {
                match self {
                    $(
                        Match::$variant(m) => {
                            s.push_str(" -m ");
                            s.push_str(<$ty as MatchModule>::NAME);
                            m.print(s);
                        }
                    )*
                    Match::Unknown { name, args } => unknown::print(s, name, args),
                }
            }

            /// Whether the match holds for `p`; `None` when the model cannot decide it.
            #[inline]
            pub fn eval(&self, p: &Packet, env: &Env<'_>) -> Option<bool> {
                match self {
                    $(Match::$variant(m) => m.eval(p, env),)*
                    Match::Unknown { .. } => None,
                }
            }

            /// The hooks where the kernel accepts the match; `None`: every hook.
            pub fn hooks(&self) -> Option<&'static [Hook]> {
                match self {
                    $(Match::$variant(_) => <$ty as MatchModule>::HOOKS,)*
                    Match::Unknown { .. } => None,
                }
            }

            /// Whether a rule with this match makes the kernel track connections.
            pub fn turns_conntrack_on(&self) -> bool {
                match self {
                    $(Match::$variant(_) => <$ty as MatchModule>::CONNTRACK,)*
                    Match::Unknown { name, .. } => unknown::CONNTRACK_MODULES.contains(&name.as_str()),
                }
            }

            /// The match the generator's selector `slot` stands for, if it can go here.
            pub(crate) fn generate(slot: u32, g: &GenCx<'_>) -> Option<Match> {
                $(
                    if slot == <$ty as MatchModule>::GEN_SLOT {
                        return <$ty as MatchModule>::generate(g).map(Match::from);
                    }
                )*
                if slot == unknown::GEN_SLOT {
                    return Some(unknown::generate());
                }
                None
            }
        }
    };
}

crate::match_modules!(define_match);
