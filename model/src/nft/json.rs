//! `nft -j list ruleset` output (and `nft -j -f` command documents) as input.
//!
//! The JSON schema (libnftables-json(5)) says in objects what nft's text says in words, object
//! for object: a `table`, `chain` or `rule` of a listing, or a command (`add`, `create`,
//! `insert`, `flush`, `delete`) holding one. Each element of the document's `nftables` array is
//! written as the one line of an nft script that says the same (a `rule`'s expressions and
//! statements as `nft list ruleset` prints them), and the script is read by the same reader as
//! nft's text ([`super::parse`]): one model of what each expression means, one list of what is
//! kept verbatim. An element with an expression this reader does not know is written with the
//! object's own key and values as words, which that reader keeps verbatim and undecidable, never
//! dropped. Errors and rule origins point at the element in the JSON text.
//!
//! Typed schema crates (`nftables`, `nftables-json`) were looked at and not taken: they refuse a
//! document with an expression they do not know, where this reader must keep it verbatim.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::ast::Ruleset;
use crate::error::ParseError;

/// Whether `text` is a JSON document (its first character that is not white space is `{`).
pub fn looks_like_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// The document: its `nftables` array, each element as written.
#[derive(serde::Deserialize)]
struct Doc<'a> {
    #[serde(borrow)]
    nftables: Vec<&'a RawValue>,
}

/// Reads `nft -j list ruleset` output or an `nft -j -f` document (`source` names it in errors).
pub fn parse(source: &str, text: &str) -> Result<Ruleset, ParseError> {
    let doc: Doc<'_> = serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line().max(1), e.column().max(1));
        let msg = if e.is_data() {
            format!("not an nftables JSON document (an object with an `nftables` array): {e}")
        } else {
            format!("invalid JSON: {e}")
        };
        error_at_line_col(source, text, line, column, strip_position(&msg))
    })?;
    let mut script = String::new();
    // Per script line: the byte range of the element it says.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for raw in &doc.nftables {
        let el = raw.get();
        let start = (el.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
        let span = (start, start + el.len());
        let value: Value = serde_json::from_str(el)
            .map_err(|e| error_at(source, text, span, format!("invalid JSON: {e}")))?;
        match element(&value) {
            Ok(None) => {}
            Ok(Some(line)) => {
                script.push_str(&line);
                script.push('\n');
                spans.push(span);
            }
            Err(msg) => return Err(error_at(source, text, span, msg)),
        }
    }
    let span_of = |line: usize| {
        spans
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or((text.len(), text.len()))
    };
    let mut rs = super::parse(source, &script).map_err(|e| {
        let said = script.lines().nth(e.line.saturating_sub(1)).unwrap_or("");
        let mut err = error_at(
            source,
            text,
            span_of(e.line),
            format!("{} (in the element read as `{said}`)", e.message),
        );
        err.help = e.help;
        err
    })?;
    // Origins: the element's place in the JSON text instead of the script line's.
    for t in rs.ipv4.iter_mut().chain(rs.ipv6.iter_mut()) {
        for c in &mut t.chains {
            for r in &mut c.rules {
                let (start, end) = span_of(r.origin.line as usize);
                let (line, line_start, line_end) = line_of(text, start);
                r.origin.line = u32::try_from(line).unwrap_or(u32::MAX);
                r.origin.start = u32::try_from(start - line_start).unwrap_or(u32::MAX);
                r.origin.end = u32::try_from(end.min(line_end) - line_start).unwrap_or(u32::MAX);
            }
        }
    }
    Ok(rs)
}

/// serde_json's message without its own " at line L column C" (the error says where).
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg.get(..i).unwrap_or(msg).to_string(),
        None => msg.to_string(),
    }
}

/// The 1-based line holding byte `at`, and the byte range of that line.
fn line_of(text: &str, at: usize) -> (usize, usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text
        .get(at..)
        .and_then(|rest| rest.find('\n'))
        .map_or(text.len(), |i| at + i);
    (before.matches('\n').count() + 1, line_start, line_end)
}

fn error_at(source: &str, text: &str, span: (usize, usize), msg: String) -> ParseError {
    let (line, line_start, line_end) = line_of(text, span.0);
    let line_text = text.get(line_start..line_end).unwrap_or("");
    ParseError::new(
        source,
        line,
        line_text,
        span.0 - line_start,
        span.1.min(line_end) - line_start,
        msg,
    )
}

fn error_at_line_col(
    source: &str,
    text: &str,
    line: usize,
    column: usize,
    msg: String,
) -> ParseError {
    let line_text = text.split('\n').nth(line - 1).unwrap_or("");
    let start = line_text
        .char_indices()
        .nth(column - 1)
        .map_or(line_text.len(), |(i, _)| i);
    ParseError::new(source, line, line_text, start, start + 1, msg)
}

type Said = Result<String, String>;

/// The script line that says what `v`, an element of the `nftables` array, says; none for
/// `metainfo`.
fn element(v: &Value) -> Result<Option<String>, String> {
    let (key, body) = single(v)?;
    match key {
        "metainfo" => Ok(None),
        "add" | "create" | "insert" => {
            let (what, obj) = single(body)?;
            object(key, what, obj).map(Some)
        }
        "flush" | "delete" => {
            let (what, obj) = single(body)?;
            let words = match what {
                "ruleset" => "ruleset".to_string(),
                "table" => format!("table {}", table_words(obj)?),
                "chain" => format!("chain {}", chain_words(obj, "name")?),
                _ => return Err(format!("`{key} {what}` is not supported")),
            };
            Ok(Some(format!("{key} {words}")))
        }
        "table" | "chain" | "rule" => object("add", key, body).map(Some),
        "replace" | "rename" | "list" | "reset" | "destroy" => {
            Err(format!("the `{key}` command is not supported"))
        }
        _ => Err(format!("`{key}` objects are not supported")),
    }
}

/// An object with exactly one member: its key and value.
fn single(v: &Value) -> Result<(&str, &Value), String> {
    match v.as_object().map(|m| (m.len(), m.iter().next())) {
        Some((1, Some((k, body)))) => Ok((k.as_str(), body)),
        _ => Err(format!(
            "expected an object with one member (`{{\"table\": …}}`, `{{\"add\": …}}`), found `{v}`"
        )),
    }
}

/// A string member, as one word.
fn s(obj: &Value, key: &str) -> Result<String, String> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(word)
        .ok_or_else(|| format!("expected a string `{key}` in `{obj}`"))
}

/// A table as script commands name it: `FAMILY NAME`.
fn table_words(o: &Value) -> Said {
    Ok(format!("{} {}", s(o, "family")?, s(o, "name")?))
}

/// A chain as script commands name it: `FAMILY TABLE CHAIN`, the chain's name under `key`
/// (`name` in a chain object, `chain` in a rule object).
fn chain_words(o: &Value, key: &str) -> Said {
    Ok(format!(
        "{} {} {}",
        s(o, "family")?,
        s(o, "table")?,
        s(o, key)?
    ))
}

/// `add`/`create`/`insert` of a table, chain or rule, as a script line.
fn object(cmd: &str, what: &str, o: &Value) -> Said {
    match what {
        "table" => Ok(format!("{cmd} table {}", table_words(o)?)),
        "chain" => {
            let mut line = format!("{cmd} chain {}", chain_words(o, "name")?);
            if let Some(ty) = o.get("type") {
                let prio = match o.get("prio") {
                    Some(Value::Number(n)) => n.to_string(),
                    Some(Value::String(p)) => word(p),
                    _ => return Err(format!("a base chain without `prio`: `{o}`")),
                };
                let ty = word(ty.as_str().ok_or("`type` is not a string")?);
                line.push_str(&format!(
                    " {{ type {ty} hook {} priority {prio} ;",
                    s(o, "hook")?
                ));
                if let Some(dev) = o.get("dev").and_then(Value::as_str) {
                    line.push_str(&format!(" device {} ;", quoted(dev)));
                }
                if let Some(p) = o.get("policy").and_then(Value::as_str) {
                    line.push_str(&format!(" policy {} ;", word(p)));
                }
                line.push_str(" }");
            }
            Ok(line)
        }
        "rule" => {
            let mut line = format!("{cmd} rule {}", chain_words(o, "chain")?);
            if let Some(i) = o.get("index").and_then(Value::as_u64) {
                line.push_str(&format!(" index {i}"));
            }
            if o.get("position").is_some() || (o.get("handle").is_some() && cmd == "insert") {
                return Err("a rule placed by `position` (a handle) is not supported".into());
            }
            let exprs = o
                .get("expr")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("a rule without an `expr` array: `{o}`"))?;
            for st in exprs {
                line.push(' ');
                line.push_str(&statement(st)?);
            }
            if let Some(c) = o.get("comment").and_then(Value::as_str) {
                line.push_str(&format!(" comment {}", quoted(c)));
            }
            Ok(line)
        }
        _ => Err(format!("`{cmd} {what}` is not supported")),
    }
}

/// `tcp reset` and the like: words of nft's own, each plain; anything else quoted.
fn quoted_unless_words(s: &str) -> String {
    s.split(' ').map(word).collect::<Vec<_>>().join(" ")
}

/// A string as one quoted word of nft's text: a quote, a line break or another control
/// character inside it would end the word (or the command), so each becomes a space.
fn quoted(s: &str) -> String {
    let inner: String = s
        .chars()
        .map(|c| if c == '"' || c.is_control() { ' ' } else { c })
        .collect();
    format!("\"{inner}\"")
}

/// A string as one word of nft's text: as it is when it is a plain word (a name, number,
/// address, keyword), else quoted, so that no string of the document can end a command or
/// start another (`; add rule …`).
fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | ':' | '/' | '@' | '$' | '*' | ',')
        });
    if plain {
        s.to_string()
    } else {
        quoted(s)
    }
}

/// A rule's statement (or match) as nft prints it.
fn statement(v: &Value) -> Said {
    let (key, body) = single(v)?;
    Ok(match key {
        "match" => {
            let left = body.get("left").ok_or("a match without `left`")?;
            let right = body.get("right").ok_or("a match without `right`")?;
            let op = body.get("op").and_then(Value::as_str).unwrap_or("==");
            let l = expr(left)?;
            let r = value(right, names_something(left))?;
            match op {
                "==" | "in" => format!("{l} {r}"),
                _ => format!("{l} {op} {r}"),
            }
        }
        "counter" => match body {
            Value::String(name) => format!("counter name {}", quoted(name)),
            _ => "counter".into(),
        },
        "accept" | "drop" | "continue" | "return" | "notrack" if body.is_null() => key.into(),
        "jump" | "goto" => format!("{key} {}", s(body, "target")?),
        "redirect" | "masquerade" => match body.get("port") {
            Some(p) => format!("{key} to :{}", value(p, false)?),
            None => key.into(),
        },
        "dnat" | "snat" | "tproxy" => {
            let mut out = key.to_string();
            if let Some(f) = body.get("family").and_then(Value::as_str) {
                out.push(' ');
                out.push_str(&word(f));
            }
            out.push_str(" to ");
            let addr = body.get("addr").map(|a| value(a, false)).transpose()?;
            let port = body.get("port").map(|p| value(p, false)).transpose()?;
            match (addr, port) {
                (Some(a), Some(p)) if a.contains(':') => out.push_str(&format!("[{a}]:{p}")),
                (Some(a), Some(p)) => out.push_str(&format!("{a}:{p}")),
                (Some(a), None) => out.push_str(&a),
                (None, Some(p)) => out.push_str(&format!(":{p}")),
                (None, None) => return Err(format!("`{key}` without an address or port")),
            }
            out
        }
        "mangle" => {
            let k = body.get("key").ok_or("`mangle` without `key`")?;
            let val = body.get("value").ok_or("`mangle` without `value`")?;
            format!("{} set {}", expr(k)?, value(val, false)?)
        }
        "log" => {
            let mut out = "log".to_string();
            if let Some(p) = body.get("prefix").and_then(Value::as_str) {
                out.push_str(&format!(" prefix {}", quoted(p)));
            }
            for k in ["level", "group"] {
                if let Some(x) = body.get(k) {
                    out.push_str(&format!(" {k} {}", scalar(x)));
                }
            }
            out
        }
        "reject" => match (body.get("type").and_then(Value::as_str), body.get("expr")) {
            (None, _) => "reject".into(),
            (Some(ty), None) => format!("reject with {}", quoted_unless_words(ty)),
            (Some(ty), Some(e)) => format!("reject with {} {}", quoted_unless_words(ty), scalar(e)),
        },
        _ => generic(key, body),
    })
}

/// Whether the left side of a match is a name (an interface's), printed quoted.
fn names_something(left: &Value) -> bool {
    left.get("meta")
        .and_then(|m| m.get("key"))
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("name"))
}

/// A value: the right side of a match, a port, an address, a mark.
fn value(v: &Value, name: bool) -> Said {
    match v {
        Value::String(x) if name => Ok(quoted(x)),
        Value::Array(flags) => Ok(flags
            .iter()
            .map(|f| value(f, name))
            .collect::<Result<Vec<_>, _>>()?
            .join(",")),
        Value::Object(_) => match single(v)? {
            ("set", Value::Array(elems)) => {
                let items: Vec<String> = elems
                    .iter()
                    .map(|e| match e.get("elem").and_then(|x| x.get("val")) {
                        Some(val) => value(val, name),
                        None => value(e, name),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(format!("{{ {} }}", items.join(", ")))
            }
            ("prefix", p) => Ok(format!(
                "{}/{}",
                value(p.get("addr").ok_or("`prefix` without `addr`")?, false)?,
                scalar(p.get("len").ok_or("`prefix` without `len`")?)
            )),
            ("range", Value::Array(ends)) if ends.len() == 2 => {
                let (a, b) = (ends.first(), ends.get(1));
                match (a, b) {
                    (Some(a), Some(b)) => Ok(format!("{}-{}", value(a, name)?, value(b, name)?)),
                    _ => Err("a `range` of two values expected".into()),
                }
            }
            _ => expr(v),
        },
        _ => Ok(scalar(v)),
    }
}

/// A number, string or other scalar as one word.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(x) => word(x),
        other => word(&other.to_string()),
    }
}

/// An expression (the left side of a match, a value computed from the packet).
fn expr(v: &Value) -> Said {
    let Value::Object(_) = v else {
        return Ok(scalar(v));
    };
    let (key, body) = single(v)?;
    Ok(match key {
        "payload" => match (body.get("protocol"), body.get("field")) {
            (Some(p), Some(f)) => format!("{} {}", scalar(p), scalar(f)),
            _ => format!(
                "@{},{},{}",
                s(body, "base")?,
                scalar(body.get("offset").ok_or("raw `payload` without `offset`")?),
                scalar(body.get("len").ok_or("raw `payload` without `len`")?)
            ),
        },
        "meta" => {
            let k = s(body, "key")?;
            if matches!(
                k.as_str(),
                "iifname" | "oifname" | "iif" | "oif" | "iifgroup" | "oifgroup"
            ) {
                k
            } else {
                format!("meta {k}")
            }
        }
        "ct" => {
            let mut out = "ct".to_string();
            for part in ["dir", "family", "key"] {
                if let Some(x) = body.get(part).and_then(Value::as_str) {
                    out.push(' ');
                    out.push_str(&word(x));
                }
            }
            out
        }
        "fib" => {
            let flags = match body.get("flags") {
                Some(Value::Array(f)) => f.iter().map(scalar).collect::<Vec<_>>().join(" . "),
                Some(f) => scalar(f),
                None => String::new(),
            };
            format!("fib {flags} {}", s(body, "result")?)
        }
        "socket" => format!("socket {}", s(body, "key")?),
        "&" | "|" | "^" | "<<" | ">>" => match body {
            Value::Array(ops) if ops.len() == 2 => {
                let words: Vec<String> = ops
                    .iter()
                    .map(|o| value(o, false))
                    .collect::<Result<_, _>>()?;
                words.join(&format!(" {key} "))
            }
            _ => return Err(format!("`{key}` of two operands expected, found `{body}`")),
        },
        _ => generic(key, body),
    })
}

/// What this reader does not know: the object's key and its members' values as words, which the
/// text reader keeps verbatim (and undecidable).
fn generic(key: &str, body: &Value) -> String {
    let mut out = word(key);
    if let Value::Object(m) = body {
        push_members(&mut out, m);
    } else if !body.is_null() {
        out.push(' ');
        out.push_str(&scalar(body));
    }
    out
}

fn push_members(out: &mut String, m: &Map<String, Value>) {
    for (k, v) in m {
        out.push(' ');
        out.push_str(&word(k));
        match v {
            Value::Object(inner) => push_members(out, inner),
            Value::Null => {}
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use crate::{Family, Match, Target};

    fn doc(elements: &[&str]) -> String {
        format!("{{\"nftables\": [\n{}\n]}}", elements.join(",\n"))
    }

    const TABLE: &str = r#"{"table": {"family": "inet", "name": "x", "handle": 1}}"#;
    const CHAIN: &str = r#"{"chain": {"family": "inet", "table": "x", "name": "o", "handle": 1, "type": "nat", "hook": "output", "prio": -100, "policy": "accept"}}"#;

    fn rule(exprs: &str) -> String {
        format!(
            r#"{{"rule": {{"family": "inet", "table": "x", "chain": "o", "expr": [{exprs}]}}}}"#
        )
    }

    /// A listing's rule reads as the text `nft list ruleset` prints for it, and its origin is
    /// its element's line in the JSON text.
    #[test]
    fn a_listing_reads_as_its_text_and_rules_point_at_their_elements() {
        let r = rule(
            r#"{"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [53, {"range": [80, 90]}]}}}, {"match": {"op": "==", "left": {"&": [{"meta": {"key": "mark"}}, 4095]}, "right": 273}}, {"counter": {"packets": 0, "bytes": 0}}, {"redirect": {"port": 15001}}"#,
        );
        let json = doc(&[
            r#"{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}"#,
            TABLE,
            CHAIN,
            &r,
        ]);
        let from_json = super::parse("j", &json).unwrap();
        let text = "add table inet x\n\
            add chain inet x o { type nat hook output priority -100 ; policy accept ; }\n\
            add rule inet x o ip daddr != 127.0.0.0/8 tcp dport { 53, 80-90 } meta mark & 0xfff == 0x111 counter redirect to :15001\n";
        let from_text = crate::nft::parse("t", text).unwrap();
        assert_eq!(from_json, from_text);
        let rule = &from_json.ipv4[0].chains[0].rules[0];
        assert_eq!(rule.family, Some(Family::Ipv4));
        assert_eq!(rule.origin.line, 5, "the rule's element is on line 5");
        assert_eq!(rule.origin.start, 0);
    }

    /// `add`/`insert` commands (an `nft -j -f` document) run as the script's would.
    #[test]
    fn commands_run_in_order() {
        let add = |r: &str| format!("{{\"add\": {r}}}");
        let accept = rule(r#"{"accept": null}"#);
        let ret = rule(r#"{"return": null}"#).replace(r#""expr""#, r#""index": 0, "expr""#);
        let json = doc(&[
            &add(TABLE),
            &add(CHAIN),
            &add(&accept),
            &format!("{{\"insert\": {ret}}}"),
        ]);
        let rs = super::parse("j", &json).unwrap();
        let targets: Vec<_> = rs.ipv4[0].chains[0]
            .rules
            .iter()
            .map(|r| r.target.clone())
            .collect();
        assert_eq!(targets, vec![Some(Target::Return), Some(Target::Accept)]);
    }

    /// A statement the reader does not know is kept verbatim (undecidable), not dropped.
    #[test]
    fn an_unknown_statement_is_kept_verbatim() {
        let json = doc(&[
            TABLE,
            CHAIN,
            &rule(r#"{"queue": {"num": 3, "flags": ["bypass"]}}"#),
        ]);
        let rs = super::parse("j", &json).unwrap();
        let r = &rs.ipv4[0].chains[0].rules[0];
        let verbatim = r.matches.iter().any(|m| matches!(m, Match::Unknown { .. }))
            || matches!(r.target, Some(Target::Unknown { .. }));
        assert!(verbatim, "{r:?}");
    }

    /// No string of the document can end a command and start another: a value holding `;
    /// add rule …` is one word, and no second rule appears.
    #[test]
    fn a_string_cannot_inject_a_command() {
        let r = rule(
            r#"{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp ; add rule inet x o drop"}}, {"accept": null}"#,
        );
        match super::parse("j", &doc(&[TABLE, CHAIN, &r])) {
            Err(e) => assert_eq!(e.line, 4, "{e}"),
            Ok(rs) => {
                let rules = &rs.ipv4[0].chains[0].rules;
                assert_eq!(rules.len(), 1, "{rules:?}");
                assert_ne!(rules[0].target, Some(Target::Drop));
            }
        }
        let name = TABLE.replace("\"x\"", "\"x ; flush ruleset\"");
        assert!(super::parse("j", &doc(&[&name])).is_err());
    }

    /// What is not an nftables document is refused with where and why.
    #[test]
    fn other_json_is_refused() {
        let e = super::parse("j", "{\"rules\": []}").unwrap_err();
        assert!(e.message.contains("not an nftables JSON document"), "{e}");
        let e = super::parse("j", "{\"nftables\": [{\"table\": 3}]}").unwrap_err();
        assert_eq!((e.line, e.column), (1, 15), "{e}");
        let e = super::parse("j", "{\"nftables\": [\n{\"flowtable\": {}}]}").unwrap_err();
        assert!(
            e.message.contains("`flowtable` objects are not supported"),
            "{e}"
        );
    }
}
