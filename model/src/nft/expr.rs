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
use crate::ast::{Cidr, Family, Iface, MarkMask, NatRange, Neg, PortRange, Protocol, Rule, Target};
use crate::ast::{CtZone, NftFamily};
use crate::error::ParseError;
use crate::matches::{
    AddrRange, AddrType, Addrtype, Comment, Connmark, Conntrack, CtState, IdSpec, Iprange, Mark,
    Match, Multiport, Owner, PortDir, Socket, Tcp, Udp,
};

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

/// A parsed statement, before the list is turned into one target.
enum Stmt {
    Target(Target),
    Tproxy { port: u16, on_ip: Option<IpAddr> },
    MarkSet(MarkMask),
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
    let mut comment: Option<String> = None;
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
            comment = Some(s.text.to_string());
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
            let text = verbatim(toks, c.rule.get(before..).unwrap_or(&[]));
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
            // Kept verbatim: the evaluator cannot decide what the rule does.
            let from = stmt_tok.unwrap_or(0);
            let text = verbatim(toks, c.rule.get(from..).unwrap_or(&[]));
            Some(Target::Unknown {
                name: VERBATIM.into(),
                args: vec![text],
            })
        }
    };
    if let Some(text) = comment {
        r.matches.push(Match::Comment(Comment { text }));
    }
    r.nft = Some(Box::new(Layout {
        family: table_family,
        items,
    }));
    Ok(r)
}

fn verbatim(toks: &Tokens<'_>, rest: &[Token<'_>]) -> String {
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
    let _ = toks;
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

fn protocol(c: &Cursor<'_, '_>, t: &Token<'_>) -> Res<Protocol> {
    let p = match t.text {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" | "ipv6-icmp" => 58,
        "sctp" => 132,
        "dccp" => 33,
        "udplite" => 136,
        "esp" => 50,
        "ah" => 51,
        "gre" => 47,
        s => parse_u64(s)
            .and_then(|v| u8::try_from(v).ok())
            .ok_or_else(|| c.err(t, format!("unknown protocol `{s}`")))?,
    };
    Ok(Protocol(p))
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
                        r.matches.push(Match::Iprange(m));
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
            r.matches.push(Match::Addrtype(Addrtype {
                src: None,
                dst: Some(Neg::new(neg, vec![at])),
                ..Default::default()
            }));
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
            *slot = Some(Neg::new(neg, Iface(name)));
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
                    None => IdSpec::Name(v.text.to_string()),
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
            r.matches.push(Match::Owner(o));
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

/// A statement at the cursor, or `None` (the cursor unmoved) when there is none the model knows.
fn statement(c: &mut Cursor<'_, '_>, r: &mut Rule) -> Res<Option<Stmt>> {
    let start = c.at;
    let Some(t) = c.next() else { return Ok(None) };
    let s = match t.text {
        "accept" => Stmt::Target(Target::Accept),
        "drop" => Stmt::Target(Target::Drop),
        "return" => Stmt::Target(Target::Return),
        "notrack" => Stmt::Target(Target::Notrack),
        "jump" | "goto" => {
            let n = c.want("a chain name")?;
            let chain = n.text.to_string();
            Stmt::Target(if t.text == "jump" {
                Target::Jump { chain }
            } else {
                Target::Goto { chain }
            })
        }
        "reject" => {
            let fam = r.family.unwrap_or(Family::Ipv4);
            if c.peek_is("with") {
                c.at = start;
                return Ok(None);
            }
            let _ = fam;
            Stmt::Target(Target::Reject {
                with: String::new(),
            })
        }
        "redirect" => {
            let mut ports = None;
            if c.peek_is("to") {
                c.at += 1;
                let p = c.want("`:PORT`")?;
                let Some(s) = p.text.strip_prefix(':') else {
                    return Err(c.err(&p, format!("expected `:PORT`, found `{}`", p.text)));
                };
                let pt = Token { text: s, ..p };
                ports = Some(port_range(c, &pt)?);
            }
            Stmt::Target(Target::Redirect {
                ports,
                random: false,
            })
        }
        "masquerade" => Stmt::Target(Target::Masquerade {
            ports: None,
            random: false,
            random_fully: false,
        }),
        "dnat" | "snat" => {
            let mut fam = match c.table_family {
                NftFamily::Ip => Some(Family::Ipv4),
                NftFamily::Ip6 => Some(Family::Ipv6),
                NftFamily::Inet => None,
            };
            if let Some(f) = c.peek().and_then(|x| family_of(x.text)) {
                c.at += 1;
                fam = Some(f);
            }
            let to = c.want("`to`")?;
            let Some(fam) = fam.filter(|_| to.is("to")) else {
                c.at = start;
                return Ok(None);
            };
            restrict(c, r, &t, fam)?;
            let a = c.want("an address")?;
            let range = nat_range(c, &a, fam)?;
            Stmt::Target(if t.text == "dnat" {
                Target::Dnat {
                    to: range,
                    random: false,
                    persistent: false,
                }
            } else {
                Target::Snat {
                    to: range,
                    random: false,
                    random_fully: false,
                    persistent: false,
                }
            })
        }
        "tproxy" => {
            let mut fam = None;
            if let Some(f) = c.peek().and_then(|x| family_of(x.text)) {
                c.at += 1;
                fam = Some(f);
            }
            let to = c.want("`to`")?;
            if !to.is("to") {
                c.at = start;
                return Ok(None);
            }
            let a = c.want("`[ADDRESS]:PORT`")?;
            let (host, p) = match a.text.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.starts_with('[') => (h, p),
                _ => {
                    c.at = start;
                    return Ok(None);
                }
            };
            let port = port(c, &a, p)?;
            let on_ip = if host.is_empty() {
                None
            } else {
                let h = host.trim_start_matches('[').trim_end_matches(']');
                let Some(f) = fam else {
                    c.at = start;
                    return Ok(None);
                };
                Some(addr(c, &a, h, f)?)
            };
            if let Some(f) = fam {
                restrict(c, r, &t, f)?;
            }
            Stmt::Tproxy { port, on_ip }
        }
        "meta" | "mark" | "ct" => {
            let mut word = t.text;
            if word == "meta" {
                let k = c.want("a meta key")?;
                if k.text != "mark" {
                    c.at = start;
                    return Ok(None);
                }
                word = "mark";
            }
            if word == "ct" {
                let k = c.want("a conntrack key")?;
                match k.text {
                    "mark" => word = "ctmark",
                    "zone" => word = "ctzone",
                    _ => {
                        c.at = start;
                        return Ok(None);
                    }
                }
            }
            if !c.peek_is("set") {
                c.at = start;
                return Ok(None);
            }
            c.at += 1;
            match mark_source(c)? {
                Some(src) => match (word, src) {
                    ("mark", Src::Value(v, m)) => Stmt::MarkSet(xmark(v, m)),
                    ("mark", Src::Ct(cm)) if cm == u32::MAX => {
                        Stmt::Target(Target::ConnmarkRestore {
                            nfmask: u32::MAX,
                            ctmask: u32::MAX,
                        })
                    }
                    ("ctmark", Src::Value(v, m)) => Stmt::Target(Target::ConnmarkSet(xmark(v, m))),
                    ("ctmark", Src::Meta(mm)) if mm == u32::MAX => {
                        Stmt::Target(Target::ConnmarkSave {
                            nfmask: u32::MAX,
                            ctmask: u32::MAX,
                        })
                    }
                    ("ctmark", Src::CtMasked(and, or)) => {
                        // ct mark & A | V: the bits outside A cleared, V set.
                        Stmt::Target(Target::ConnmarkSet(MarkMask {
                            value: or,
                            mask: !and | or,
                        }))
                    }
                    ("mark", Src::MetaMasked(and, or)) => Stmt::MarkSet(MarkMask {
                        value: or,
                        mask: !and | or,
                    }),
                    ("ctzone", Src::Value(v, _)) => {
                        let Ok(id) = u16::try_from(v) else {
                            let l = c.last();
                            return Err(c.err(&l, "a zone is at most 65535"));
                        };
                        Stmt::Target(Target::Ct {
                            notrack: false,
                            zone: Some(CtZone { id, orig: None }),
                        })
                    }
                    _ => {
                        c.at = start;
                        return Ok(None);
                    }
                },
                None => {
                    c.at = start;
                    return Ok(None);
                }
            }
        }
        "log" => {
            let mut prefix = None;
            let mut level = 4;
            loop {
                if c.peek_is("prefix") {
                    c.at += 1;
                    let p = c.want("a prefix")?;
                    prefix = Some(p.text.to_string());
                } else if c.peek_is("level") {
                    c.at += 1;
                    let l = c.want("a level")?;
                    level = match l.text {
                        "emerg" => 0,
                        "alert" => 1,
                        "crit" => 2,
                        "err" => 3,
                        "warn" => 4,
                        "notice" => 5,
                        "info" => 6,
                        "debug" => 7,
                        _ => return Err(c.err(&l, format!("unknown log level `{}`", l.text))),
                    };
                } else {
                    break;
                }
            }
            Stmt::Target(Target::Log {
                prefix,
                level,
                flags: Vec::new(),
            })
        }
        _ => {
            c.at = start;
            return Ok(None);
        }
    };
    Ok(Some(s))
}

/// The value a `set` statement writes.
enum Src {
    /// A constant (`0x539`), or `mark and M or V` forms reduced to value/mask pairs.
    Value(u32, u32),
    /// `ct mark` (with a mask).
    Ct(u32),
    /// `meta mark` / `mark` (with a mask).
    Meta(u32),
    /// `ct mark & A | V`.
    CtMasked(u32, u32),
    /// `meta mark & A | V`.
    MetaMasked(u32, u32),
}

fn mark_source(c: &mut Cursor<'_, '_>) -> Res<Option<Src>> {
    let t = c.want("a value")?;
    let from = match t.text {
        "ct" => {
            let k = c.want("`mark`")?;
            if k.text != "mark" {
                return Ok(None);
            }
            Some(true)
        }
        "meta" => {
            let k = c.want("`mark`")?;
            if k.text != "mark" {
                return Ok(None);
            }
            Some(false)
        }
        "mark" => Some(false),
        _ => None,
    };
    let Some(ct) = from else {
        let v = num_u32(c, &t)?;
        return Ok(Some(Src::Value(v, u32::MAX)));
    };
    let mut and = u32::MAX;
    let mut or = 0u32;
    let mut ops = false;
    while c.peek_is("&") || c.peek_is("and") || c.peek_is("|") || c.peek_is("or") {
        let op = c.next().map(|x| x.text).unwrap_or("");
        let v = c.want("a number")?;
        let n = num_u32(c, &v)?;
        ops = true;
        if op == "&" || op == "and" {
            and &= n;
            or &= n;
        } else {
            or |= n;
        }
    }
    Ok(Some(match (ct, ops) {
        (true, false) => Src::Ct(u32::MAX),
        (false, false) => Src::Meta(u32::MAX),
        (true, true) => Src::CtMasked(and, or),
        (false, true) => Src::MetaMasked(and, or),
    }))
}

/// `mark set V` with the mask `m`: the model's xmark.
fn xmark(value: u32, mask: u32) -> MarkMask {
    MarkMask { value, mask }
}

fn nat_range(c: &Cursor<'_, '_>, t: &Token<'_>, fam: Family) -> Res<NatRange> {
    let text = t.text;
    let (host, ports) = if fam == Family::Ipv4 {
        match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    } else if let Some(rest) = text.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(c.err(t, format!("expected `[ADDRESS]:PORT`, found `{text}`"))),
        }
    } else {
        (text, None)
    };
    let (lo, hi) = match host.split_once('-') {
        Some((a, b)) => (addr(c, t, a, fam)?, Some(addr(c, t, b, fam)?)),
        None if host.is_empty() => return Err(c.err(t, "expected an address")),
        None => (addr(c, t, host, fam)?, None),
    };
    let ports = match ports {
        Some(p) => {
            let pt = Token { text: p, ..*t };
            Some(port_range(c, &pt)?)
        }
        None => None,
    };
    Ok(NatRange {
        addr_lo: Some(lo),
        addr_hi: hi,
        ports,
    })
}

/// The statement list as one target: the model's targets are iptables', so a list is taken when
/// it is one of theirs (a single statement, or TPROXY's `tproxy … [meta mark set V] accept`);
/// `None` for any other list.
fn target(stmts: Vec<Stmt>) -> Option<Option<Target>> {
    let mut it = stmts.into_iter();
    let first = it.next();
    let rest: Vec<Stmt> = it.collect();
    Some(match (first, rest.as_slice()) {
        (None, _) => None,
        (Some(Stmt::Target(t)), []) => Some(t),
        (Some(Stmt::MarkSet(m)), []) => Some(Target::Mark(m)),
        (Some(Stmt::Tproxy { port, on_ip, .. }), [Stmt::Target(Target::Accept)]) => {
            Some(Target::Tproxy {
                on_port: port,
                on_ip,
                mark: MarkMask { value: 0, mask: 0 },
            })
        }
        (
            Some(Stmt::Tproxy { port, on_ip, .. }),
            [Stmt::MarkSet(m), Stmt::Target(Target::Accept)],
        ) => Some(Target::Tproxy {
            on_port: port,
            on_ip,
            mark: *m,
        }),
        _ => return None,
    })
}
