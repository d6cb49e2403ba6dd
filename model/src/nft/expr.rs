//! One nft rule's expressions and statements, lowered onto the model's [`Rule`]: the match modules
//! and targets that iptables' rules use, which evaluate, encode and mutate as they do there.
//!
//! | nft | model |
//! |---|---|
//! | `meta l4proto P`, `ip protocol P`, `ip6 nexthdr P` | [`Rule::proto`] |
//! | `ip saddr`/`daddr A[/n]`, `ip6 …` | [`Rule::src`]/[`Rule::dst`] and [`Rule::family`] |
//! | `ip saddr A-B` | `Iprange` |
//! | `iifname`/`oifname`/`iif`/`oif` (`*` as iptables' `+`) | [`Rule::in_iface`]/[`Rule::out_iface`] |
//! | `tcp`/`udp` `sport`/`dport` N or N-M | `Tcp`/`Udp` (and the protocol) |
//! | `tcp`/`udp`/`th` `dport { … }` | `Multiport` |
//! | `meta skuid`/`skgid` | `Owner` |
//! | `meta mark [& M] V`, `ct mark …` | `Mark`, `Connmark` |
//! | `ct state …` | `Conntrack` |
//! | `fib daddr type local` | `Addrtype` |
//! | `socket transparent 1` | `Socket` |
//! | `meta nfproto ipv4` | [`Rule::family`] |
//! | `accept` `drop` `return` `jump` `goto` `reject` | the same targets |
//! | `redirect [to :P]`, `dnat`, `snat`, `masquerade` | the NAT targets |
//! | `tproxy ip to :P [meta mark set V] accept` | `TPROXY` (which accepts, with its mark) |
//! | `meta mark set …`, `ct mark set …`, `ct zone set N`, `notrack`, `log` | `MARK`, `CONNMARK`, `CT`, `NOTRACK`, `LOG` |
//!
//! An expression or statement sequence outside this table is kept verbatim from there to the
//! end of the rule as an unknown match, which the evaluator cannot decide: never dropped.

use std::net::IpAddr;

use super::lex::{Kind, Token, Tokens};
use super::{Item, Layout, ProtoWord, VERBATIM};
use crate::ast::NftFamily;
use crate::ast::{Cidr, Family, Iface, MarkMask, Neg, PortRange, Protocol, Rule, Target};
use crate::error::ParseError;
use crate::matches::{
    AddrRange, AddrType, Addrtype, Comment, Connmark, Conntrack, CtState, IdSpec, Iprange, Mark,
    Match, Multiport, Owner, PortDir, Socket, Tcp, Udp,
};

mod stmt;

use stmt::{statement, target, Stmt};

type Res<T> = Result<T, ParseError>;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// A value on the right of a comparison: one word or an anonymous set.
enum Value<'a> {
    One(Token<'a>),
    Set(Token<'a>, Vec<Token<'a>>),
}

struct Cursor<'t, 'a> {
    toks: &'t Tokens<'a>,
    rule: &'t [Token<'a>],
    at: usize,
    table_family: NftFamily,
}

impl<'a> Cursor<'_, 'a> {
    fn peek(&self) -> Option<&Token<'a>> {
        self.rule.get(self.at)
    }
    fn peek_is(&self, s: &str) -> bool {
        self.peek().is_some_and(|t| t.is(s))
    }
    fn next(&mut self) -> Option<Token<'a>> {
        let t = self.rule.get(self.at).copied();
        self.at += 1;
        t
    }
    fn last(&self) -> Token<'a> {
        self.rule
            .get(self.at.saturating_sub(1))
            .or_else(|| self.rule.last())
            .copied()
            .unwrap_or(Token {
                kind: Kind::Newline,
                text: "",
                line: 0,
                start: 0,
                end: 0,
            })
    }
    fn want(&mut self, what: &str) -> Res<Token<'a>> {
        match self.next() {
            Some(t) if t.kind != Kind::Newline => Ok(t),
            _ => {
                let l = self.last();
                Err(self
                    .toks
                    .error_at_end(l.line, format!("expected {what} at the end of the rule")))
            }
        }
    }
    fn err(&self, t: &Token<'_>, msg: impl Into<String>) -> ParseError {
        self.toks.error(t, msg)
    }

    /// An optional comparison operator.
    fn op(&mut self) -> Op {
        let op = match self.peek().map(|t| t.text) {
            Some("==" | "eq") => Op::Eq,
            Some("!=" | "ne") => Op::Ne,
            Some("<" | "lt") => Op::Lt,
            Some(">" | "gt") => Op::Gt,
            Some("<=" | "le") => Op::Le,
            Some(">=" | "ge") => Op::Ge,
            _ => return Op::Eq,
        };
        self.at += 1;
        op
    }

    /// The value compared; `None` for a named set (`@name`), whose elements the rule does not
    /// hold: the model keeps such an expression verbatim.
    fn value(&mut self, what: &str) -> Res<Option<Value<'a>>> {
        let t = self.want(what)?;
        if t.text.starts_with('@') {
            return Ok(None);
        }
        self.value_from(t, what).map(Some)
    }

    fn value_from(&mut self, t: Token<'a>, what: &str) -> Res<Value<'a>> {
        if !t.is("{") {
            if t.kind == Kind::Punct {
                return Err(self.err(&t, format!("expected {what}, found `{}`", t.text)));
            }
            if !self.peek_is(",") {
                return Ok(Value::One(t));
            }
            // A list without braces (`ct state related,established`).
            let mut items = vec![t];
            while self.peek_is(",") {
                self.at += 1;
                items.push(self.want(what)?);
            }
            return Ok(Value::Set(t, items));
        }
        let mut items = Vec::new();
        loop {
            let x = self.want("`}`")?;
            if x.is("}") {
                break;
            }
            if x.is(",") || x.kind == Kind::Newline {
                continue;
            }
            items.push(x);
        }
        if items.is_empty() {
            return Err(self.err(&t, "empty set"));
        }
        Ok(Value::Set(t, items))
    }
}

/// Lowers the tokens of one rule (`rule`, not empty) in a table of `table_family`.
pub(crate) fn rule(toks: &Tokens<'_>, rule: &[Token<'_>], table_family: NftFamily) -> Res<Rule> {
    let mut c = Cursor {
        toks,
        rule,
        at: 0,
        table_family,
    };
    let mut r = Rule::default();
    let mut items: Vec<Item> = Vec::new();
    let mut stmts: Vec<Stmt> = Vec::new();
    // The token where the first statement starts, for keeping an unknown sequence verbatim.
    let mut stmt_tok: Option<usize> = None;
    // Whether the rule ends in a part kept verbatim after its statements.
    let mut trailing_verbatim = false;
    let mut comment: Option<(usize, String)> = None;
    while let Some(t) = c.peek().copied() {
        let before = c.at;
        let handled = if t.is("counter") {
            c.at += 1;
            if c.peek_is("packets") {
                c.at += 1;
                let p = c.want("a packet count")?;
                r.counters.packets = num_u64(&c, &p)?;
                let b = c.want("`bytes`")?;
                if !b.is("bytes") {
                    return Err(c.err(&b, format!("expected `bytes`, found `{}`", b.text)));
                }
                let n = c.want("a byte count")?;
                r.counters.bytes = num_u64(&c, &n)?;
            }
            items.push(Item::Counter);
            true
        } else if t.is("comment") {
            c.at += 1;
            let s = c.want("a comment")?;
            // A string or a word: `comment {` is nft's syntax error (and a brace taken as the
            // comment would leave the rest of the rule's braces unbalanced when printed).
            if s.kind == Kind::Punct {
                return Err(c.err(&s, format!("expected a comment, found `{}`", s.text)));
            }
            comment = Some((before, s.text.to_string()));
            true
        } else if let Some(s) = statement(&mut c, &mut r)? {
            stmt_tok.get_or_insert(before);
            items.push(Item::Stmt(stmts.len()));
            stmts.push(s);
            true
        } else if stmts.is_empty() {
            expression(&mut c, &mut r, &mut items)?
        } else {
            false
        };
        if !handled {
            // Kept verbatim from here: the model does not know it.
            c.at = before;
            trailing_verbatim = !stmts.is_empty();
            let text = verbatim(c.rule.get(before..).unwrap_or(&[]));
            r.matches.push(Match::Unknown {
                name: VERBATIM.into(),
                args: vec![text],
            });
            items.push(Item::Match);
            c.at = c.rule.len();
        }
    }
    r.target = match target(stmts) {
        Some(t) => t,
        None => {
            // Kept verbatim from the first statement on: the evaluator cannot decide what the
            // rule does. What followed the statements verbatim is part of it.
            if trailing_verbatim {
                r.matches.pop();
            }
            let from = stmt_tok.unwrap_or(0);
            // Everything from the first statement on is in the verbatim text: a `counter` or
            // `comment` there too.
            if let Some(first) = items.iter().position(|i| matches!(i, Item::Stmt(_))) {
                items.truncate(first);
            }
            items.push(Item::Stmt(0));
            if comment.as_ref().is_some_and(|(at, _)| *at > from) {
                comment = None;
            }
            let text = verbatim(c.rule.get(from..).unwrap_or(&[]));
            Some(Target::Unknown {
                name: VERBATIM.into(),
                args: vec![text],
            })
        }
    };
    if let Some((_, text)) = comment {
        r.matches.push(Match::Comment(Comment { text }));
    }
    r.nft = Some(Box::new(Layout {
        family: table_family,
        items,
    }));
    Ok(r)
}

fn verbatim(rest: &[Token<'_>]) -> String {
    let mut s = String::new();
    for t in rest {
        if t.kind == Kind::Newline {
            continue;
        }
        if !s.is_empty() && !t.is(",") {
            s.push(' ');
        }
        if t.kind == Kind::Str {
            s.push('"');
            s.push_str(t.text);
            s.push('"');
        } else {
            s.push_str(t.text);
        }
    }
    s
}

fn num_u64(c: &Cursor<'_, '_>, t: &Token<'_>) -> Res<u64> {
    parse_u64(t.text).ok_or_else(|| c.err(t, format!("expected a number, found `{}`", t.text)))
}

fn parse_u64(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

fn num_u32(c: &Cursor<'_, '_>, t: &Token<'_>) -> Res<u32> {
    parse_u64(t.text)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| c.err(t, format!("expected a 32-bit number, found `{}`", t.text)))
}

fn port(c: &Cursor<'_, '_>, t: &Token<'_>, s: &str) -> Res<u16> {
    parse_u64(s)
        .and_then(|v| u16::try_from(v).ok())
        .ok_or_else(|| c.err(t, format!("expected a port number, found `{s}`")))
}

fn port_range(c: &Cursor<'_, '_>, t: &Token<'_>) -> Res<PortRange> {
    match t.text.split_once('-') {
        Some((a, b)) => {
            let (lo, hi) = (port(c, t, a)?, port(c, t, b)?);
            if lo > hi {
                return Err(c.err(t, format!("range `{}` is empty", t.text)));
            }
            Ok(PortRange { lo, hi })
        }
        None => Ok(PortRange::single(port(c, t, t.text)?)),
    }
}

/// The family an address of `fam` (`ip`/`ip6`) must have.
fn addr(c: &Cursor<'_, '_>, t: &Token<'_>, s: &str, fam: Family) -> Res<IpAddr> {
    let ip: IpAddr = s
        .parse()
        .map_err(|_| c.err(t, format!("expected an address, found `{s}`")))?;
    if ip.is_ipv4() != (fam == Family::Ipv4) {
        let want = if fam == Family::Ipv4 { "IPv4" } else { "IPv6" };
        return Err(c.err(t, format!("expected an {want} address, found `{s}`")));
    }
    Ok(ip)
}

fn family_of(word: &str) -> Option<Family> {
    match word {
        "ip" => Some(Family::Ipv4),
        "ip6" => Some(Family::Ipv6),
        _ => None,
    }
}

/// Sets the rule's family; a rule that reads both IPv4 and IPv6 headers is refused.
fn restrict(c: &Cursor<'_, '_>, r: &mut Rule, t: &Token<'_>, fam: Family) -> Res<()> {
    let allowed = match c.table_family {
        NftFamily::Inet => true,
        NftFamily::Ip => fam == Family::Ipv4,
        NftFamily::Ip6 => fam == Family::Ipv6,
    };
    if !allowed || r.family.is_some_and(|f| f != fam) {
        return Err(c.err(
            t,
            "this rule would read both IPv4 and IPv6 headers, so it never matches; not supported",
        ));
    }
    r.family = Some(fam);
    Ok(())
}

fn neg_of(c: &Cursor<'_, '_>, t: &Token<'_>, op: Op) -> Res<bool> {
    match op {
        Op::Eq => Ok(false),
        Op::Ne => Ok(true),
        _ => Err(c.err(t, "only `==` and `!=` compare this")),
    }
}

/// A protocol by its /etc/protocols name (which nft reads and prints, as iptables does) or number.
fn protocol(c: &Cursor<'_, '_>, t: &Token<'_>) -> Res<Protocol> {
    let name = if t.text == "icmpv6" {
        "ipv6-icmp"
    } else {
        t.text
    };
    crate::print::PROTOCOL_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
        .or_else(|| parse_u64(t.text).and_then(|v| u8::try_from(v).ok()))
        .map(Protocol)
        .ok_or_else(|| c.err(t, format!("unknown protocol `{}`", t.text)))
}

/// Sets the rule's protocol; a second, different one is refused (the rule could never match).
fn set_proto(c: &Cursor<'_, '_>, r: &mut Rule, t: &Token<'_>, p: Neg<Protocol>) -> Res<()> {
    match r.proto {
        Some(old) if old != p => {
            Err(c.err(t, "a second protocol test in one rule is not supported"))
        }
        _ => {
            r.proto = Some(p);
            Ok(())
        }
    }
}

/// One expression at the cursor: `Ok(false)` when the model does not know it.
fn expression(c: &mut Cursor<'_, '_>, r: &mut Rule, items: &mut Vec<Item>) -> Res<bool> {
    let Some(t) = c.next() else { return Ok(false) };
    let word = t.text;
    // `meta KEY` and the keys nft also takes without `meta`.
    let key = if word == "meta" {
        let k = c.want("a meta key")?;
        Some(k)
    } else if matches!(
        word,
        "mark" | "iifname" | "oifname" | "iif" | "oif" | "skuid" | "skgid" | "l4proto" | "nfproto"
    ) {
        Some(t)
    } else {
        None
    };
    if let Some(k) = key {
        return meta(c, r, items, &k);
    }
    match word {
        "ip" | "ip6" => {
            let fam = family_of(word).unwrap_or(Family::Ipv4);
            let field = c.want("a header field")?;
            match field.text {
                "saddr" | "daddr" => {
                    let op = c.op();
                    let neg = neg_of(c, &field, op)?;
                    let Some(Value::One(vt)) = c.value("an address")? else {
                        return Ok(false);
                    };
                    restrict(c, r, &t, fam)?;
                    let src = field.text == "saddr";
                    if let Some((a, b)) = vt.text.split_once('-') {
                        let range = AddrRange {
                            lo: addr(c, &vt, a, fam)?,
                            hi: addr(c, &vt, b, fam)?,
                        };
                        let m = if src {
                            Iprange {
                                src: Some(Neg::new(neg, range)),
                                dst: None,
                            }
                        } else {
                            Iprange {
                                src: None,
                                dst: Some(Neg::new(neg, range)),
                            }
                        };
                        r.matches.push(Match::Iprange(Box::new(m)));
                        items.push(Item::Match);
                        return Ok(true);
                    }
                    let (a, len) = match vt.text.split_once('/') {
                        Some((a, l)) => (a, Some(l)),
                        None => (vt.text, None),
                    };
                    let ip = addr(c, &vt, a, fam)?;
                    let width = if fam == Family::Ipv4 { 32 } else { 128 };
                    let prefix = match len {
                        Some(l) => {
                            l.parse::<u8>()
                                .ok()
                                .filter(|p| *p <= width)
                                .ok_or_else(|| {
                                    c.err(&vt, format!("bad prefix length in `{}`", vt.text))
                                })?
                        }
                        None => width,
                    };
                    let slot = if src { &mut r.src } else { &mut r.dst };
                    if slot.is_some() {
                        return Err(c.err(
                            &field,
                            format!(
                                "a second `{word} {}` in one rule is not supported",
                                field.text
                            ),
                        ));
                    }
                    *slot = Some(Neg::new(neg, Cidr::new(ip, prefix)));
                    items.push(if src { Item::Src } else { Item::Dst });
                    Ok(true)
                }
                "protocol" | "nexthdr" => {
                    let op = c.op();
                    let neg = neg_of(c, &field, op)?;
                    let Some(Value::One(vt)) = c.value("a protocol")? else {
                        return Ok(false);
                    };
                    let p = protocol(c, &vt)?;
                    restrict(c, r, &t, fam)?;
                    set_proto(c, r, &vt, Neg::new(neg, p))?;
                    items.push(Item::Proto(if fam == Family::Ipv4 {
                        ProtoWord::IpProtocol
                    } else {
                        ProtoWord::Ip6Nexthdr
                    }));
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
        "tcp" | "udp" | "th" => {
            let field = c.want("`sport` or `dport`")?;
            let dir = match field.text {
                "sport" => PortDir::Source,
                "dport" => PortDir::Destination,
                _ => return Ok(false),
            };
            let op = c.op();
            let Some(v) = c.value("a port")? else {
                return Ok(false);
            };
            let proto = match word {
                "tcp" => Some(Protocol::TCP),
                "udp" => Some(Protocol::UDP),
                _ => r
                    .proto
                    .filter(|p| !p.negated)
                    .map(|p| p.value)
                    .filter(|p| p.has_ports()),
            };
            let Some(proto) = proto else {
                // `th` without a known protocol reads any transport header's bytes.
                return Ok(false);
            };
            if word != "th" {
                set_proto(c, r, &t, Neg::pos(proto))?;
            }
            let (neg, ranges) = match (&v, op) {
                (Value::Set(_, xs), Op::Eq | Op::Ne) => {
                    let mut out = Vec::new();
                    for x in xs {
                        out.push(port_range(c, x)?);
                    }
                    (op == Op::Ne, out)
                }
                (Value::Set(st, _), _) => return Err(c.err(st, "only `==` and `!=` compare a set")),
                (Value::One(x), _) => {
                    let pr = port_range(c, x)?;
                    match op {
                        Op::Eq => (false, vec![pr]),
                        Op::Ne => (true, vec![pr]),
                        Op::Lt | Op::Ge => {
                            let Some(b) = pr.lo.checked_sub(1).filter(|_| pr.lo == pr.hi) else {
                                return Err(c.err(x, "expected a port greater than 0"));
                            };
                            (op == Op::Ge, vec![PortRange { lo: 0, hi: b }])
                        }
                        Op::Gt | Op::Le => {
                            let Some(b) = pr.lo.checked_add(1).filter(|_| pr.lo == pr.hi) else {
                                return Err(c.err(x, "expected a port below 65535"));
                            };
                            (
                                op == Op::Le,
                                vec![PortRange {
                                    lo: b,
                                    hi: u16::MAX,
                                }],
                            )
                        }
                    }
                }
            };
            let set = matches!(v, Value::Set(..)) || word == "th" || !matches!(op, Op::Eq | Op::Ne);
            let m = match (set, ranges.as_slice()) {
                (false, [one]) => {
                    let p = Some(Neg::new(neg, *one));
                    let (sport, dport) = if dir == PortDir::Source {
                        (p, None)
                    } else {
                        (None, p)
                    };
                    if proto == Protocol::TCP {
                        Match::Tcp(Tcp {
                            sport,
                            dport,
                            flags: None,
                        })
                    } else {
                        Match::Udp(Udp { sport, dport })
                    }
                }
                _ => Match::Multiport(Multiport {
                    negated: neg,
                    dir,
                    ports: ranges,
                }),
            };
            r.matches.push(m);
            items.push(if word == "th" { Item::Th } else { Item::Match });
            Ok(true)
        }
        "ct" => {
            let k = c.want("a conntrack key")?;
            match k.text {
                "state" => {
                    let op = c.op();
                    let neg = neg_of(c, &k, op)?;
                    let Some(v) = c.value("a state")? else {
                        return Ok(false);
                    };
                    let words: Vec<Token<'_>> = match v {
                        Value::One(x) => vec![x],
                        Value::Set(_, xs) => xs,
                    };
                    let mut states = Vec::new();
                    for w in words {
                        for s in w.text.split(',') {
                            states.push(match s {
                                "invalid" => CtState::Invalid,
                                "new" => CtState::New,
                                "related" => CtState::Related,
                                "established" => CtState::Established,
                                "untracked" => CtState::Untracked,
                                _ => {
                                    return Err(c.err(&w, format!("unknown conntrack state `{s}`")))
                                }
                            });
                        }
                    }
                    // One state set, whichever order it was written in: the model's order.
                    let states: Vec<CtState> = CtState::CT_ORDER
                        .into_iter()
                        .filter(|s| states.contains(s))
                        .collect();
                    if neg && states.len() > 1 {
                        // `ct state != a,b` is `ct state != a|b`, a comparison with the flags'
                        // union (the kernel found it): true for every packet, whose state is one
                        // flag. Kept verbatim rather than given iptables' "in neither" meaning.
                        return Ok(false);
                    }
                    r.matches.push(Match::Conntrack(Conntrack {
                        ctstate: Neg::new(neg, states),
                    }));
                    items.push(Item::Match);
                    Ok(true)
                }
                "mark" => {
                    if c.peek_is("set") {
                        return Ok(false);
                    }
                    let mm = masked(c, &k)?;
                    r.matches.push(Match::Connmark(Connmark(mm)));
                    items.push(Item::Match);
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
        "fib" => {
            // `fib daddr type local` (and `!= local`).
            let f = c.want("`daddr`")?;
            let ty = c.want("`type`")?;
            if f.text != "daddr" || ty.text != "type" {
                return Ok(false);
            }
            let op = c.op();
            let neg = neg_of(c, &ty, op)?;
            let Some(Value::One(v)) = c.value("an address type")? else {
                return Ok(false);
            };
            let at = match v.text {
                "local" => AddrType::Local,
                "unicast" => AddrType::Unicast,
                "broadcast" => AddrType::Broadcast,
                "multicast" => AddrType::Multicast,
                _ => return Ok(false),
            };
            r.matches.push(Match::Addrtype(Box::new(Addrtype {
                src: None,
                dst: Some(Neg::new(neg, vec![at])),
                ..Default::default()
            })));
            items.push(Item::Match);
            Ok(true)
        }
        "socket" => {
            let k = c.want("a socket key")?;
            let Some(Value::One(v)) = c.value("a value")? else {
                return Ok(false);
            };
            match (k.text, v.text) {
                ("transparent", "1") => {
                    r.matches.push(Match::Socket(Socket {
                        transparent: true,
                        ..Default::default()
                    }));
                    items.push(Item::Match);
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
        _ => Ok(false),
    }
}

/// `mark`-like comparisons: `[& M | and M] [op] V`.
fn masked(c: &mut Cursor<'_, '_>, at: &Token<'_>) -> Res<Neg<MarkMask>> {
    let mut mask = u32::MAX;
    if c.peek_is("&") || c.peek_is("and") {
        c.at += 1;
        let m = c.want("a mask")?;
        mask = num_u32(c, &m)?;
    }
    let op = c.op();
    let neg = neg_of(c, at, op)?;
    let Some(Value::One(v)) = c.value("a mark")? else {
        return Err(c.err(at, "a set of marks is not supported"));
    };
    let value = num_u32(c, &v)?;
    Ok(Neg::new(neg, MarkMask { value, mask }))
}

fn meta(c: &mut Cursor<'_, '_>, r: &mut Rule, items: &mut Vec<Item>, k: &Token<'_>) -> Res<bool> {
    match k.text {
        "l4proto" => {
            let op = c.op();
            let neg = neg_of(c, k, op)?;
            let Some(Value::One(v)) = c.value("a protocol")? else {
                return Ok(false);
            };
            let p = protocol(c, &v)?;
            set_proto(c, r, &v, Neg::new(neg, p))?;
            items.push(Item::Proto(ProtoWord::L4proto));
            Ok(true)
        }
        "nfproto" => {
            let op = c.op();
            let Some(Value::One(v)) = c.value("a family")? else {
                return Ok(false);
            };
            let fam = match v.text {
                "ipv4" => Family::Ipv4,
                "ipv6" => Family::Ipv6,
                _ => return Ok(false),
            };
            if op != Op::Eq {
                return Ok(false);
            }
            restrict(c, r, &v, fam)?;
            items.push(Item::NfProto);
            Ok(true)
        }
        "iifname" | "oifname" | "iif" | "oif" => {
            let op = c.op();
            let neg = neg_of(c, k, op)?;
            let Some(Value::One(v)) = c.value("an interface")? else {
                return Ok(false);
            };
            let mut name = v.text.to_string();
            if name.ends_with('+') {
                // A literal `+` for nft; the model's names read it as iptables' wildcard.
                return Ok(false);
            }
            if let Some(p) = name.strip_suffix('*') {
                name = format!("{p}+");
            }
            if name.is_empty() || name.len() > 15 {
                return Err(c.err(&v, format!("bad interface name `{}`", v.text)));
            }
            let input = k.text.starts_with('i');
            let slot = if input {
                &mut r.in_iface
            } else {
                &mut r.out_iface
            };
            if slot.is_some() {
                return Err(c.err(k, "a second interface test in one rule is not supported"));
            }
            *slot = Some(Box::new(Neg::new(neg, Iface(name))));
            let index = !k.text.ends_with("name");
            items.push(if input {
                Item::InIface { index }
            } else {
                Item::OutIface { index }
            });
            Ok(true)
        }
        "skuid" | "skgid" => {
            let op = c.op();
            let neg = neg_of(c, k, op)?;
            let Some(Value::One(v)) = c.value("an id")? else {
                return Ok(false);
            };
            let id = match v.text.split_once('-') {
                Some((a, b)) => match (parse_u64(a), parse_u64(b)) {
                    (Some(lo), Some(hi)) if lo <= hi && hi <= u64::from(u32::MAX) => {
                        IdSpec::Range {
                            lo: lo as u32,
                            hi: hi as u32,
                        }
                    }
                    _ => return Err(c.err(&v, format!("bad id range `{}`", v.text))),
                },
                None => match parse_u64(v.text) {
                    Some(n) => {
                        let n = u32::try_from(n).map_err(|_| c.err(&v, "id out of range"))?;
                        IdSpec::Range { lo: n, hi: n }
                    }
                    // A user or group name, which the node resolves: a bare word (what the
                    // print writes back).
                    None if v.kind == Kind::Word => IdSpec::Name(v.text.to_string()),
                    None => return Ok(false),
                },
            };
            let spec = Some(Neg::new(neg, id));
            let o = if k.text == "skuid" {
                Owner {
                    uid: spec,
                    ..Default::default()
                }
            } else {
                Owner {
                    gid: spec,
                    ..Default::default()
                }
            };
            r.matches.push(Match::Owner(Box::new(o)));
            items.push(Item::Match);
            Ok(true)
        }
        "mark" => {
            if c.peek_is("set") {
                return Ok(false);
            }
            let mm = masked(c, k)?;
            r.matches.push(Match::Mark(Mark(mm)));
            items.push(Item::Match);
            Ok(true)
        }
        _ => Ok(false),
    }
}
