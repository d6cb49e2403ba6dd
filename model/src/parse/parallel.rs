//! A save file's long runs of `-A` lines read on several threads.
//!
//! A node's nat table is one block of 40,000 chain declarations followed by 110,000 `-A` lines
//! (kube-proxy with 10,000 services). An `-A` line adds rules to a chain that exists and adds no
//! chain, so while such a run is read the chains of every table stay as they are
//! ([`Loader::chains`]), and each line can be read without the lines before it. The run is cut
//! into one part per thread at line boundaries; each part becomes the rules of its lines grouped
//! by chain ([`Piece`]), and the loader appends the parts in the input's order
//! ([`Loader::append_pieces`]): the same rules, in the same chains, in the same order as reading
//! the lines one after the other.
//!
//! A part stops at its first line that is not a plain `-A` command whose rule reads without an
//! error: the driver (`parse/mod.rs`) appends what came before it and reads on from that line
//! one line at a time, so every error is found and worded by the one-line-at-a-time path, as
//! if no thread had been used; the parts after it are discarded. A run shorter than
//! [`Tuning::min_run_bytes`] is read one line at a time.

use super::iptables::{self, looks_like_table_option, AddRule};
use super::lex::Token;
use super::loader::{grow, Chains, Line, Loader, Piece};
use super::names::Short;
use super::rule::{parse_rule_into, RuleContext};
use crate::ast::*;
use std::cell::Cell;

/// When a run of `-A` lines is read on several threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// The threads that may read one run; 1 reads every line on the calling thread.
    pub threads: usize,
    /// The shortest run, in bytes, read on several threads: below it, starting threads costs
    /// more than it saves.
    pub min_run_bytes: usize,
}

impl Default for Tuning {
    /// As many threads as the machine lets this process use (at most 8), for runs of 512 KiB
    /// (about 4,500 of kube-proxy's lines) and more.
    fn default() -> Tuning {
        static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let threads = *THREADS
            .get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)));
        Tuning {
            threads,
            min_run_bytes: 512 * 1024,
        }
    }
}

/// Where the driver reads on after [`run`]: the byte offset and 1-based number of the next
/// line, or `None` when the input ended with the run.
pub(super) type Resume = Option<(usize, usize)>;

/// The run of `-A` lines that starts at byte `start` (line `number`) of `text`, read on
/// `tuning.threads` threads when it is long enough. `Ok(resume)` when it was read (up to the
/// line where a part stopped); `Err(end)` when it was too short and nothing was read, `end`
/// being the offset past the run (the driver does not look for a run again before it).
pub(super) fn run<'t>(
    loader: &mut Loader<'t>,
    source: &'t str,
    text: &'t str,
    start: usize,
    number: usize,
    tuning: &Tuning,
) -> Result<Resume, usize> {
    let scan = scan(text, start, number);
    let bytes = scan.end - start;
    if tuning.threads < 2 || bytes < tuning.min_run_bytes.max(1) {
        return Err(scan.end);
    }
    let parts = cut(&scan, start, number, tuning.threads);
    #[cfg(test)]
    tests::RUNS.with(|r| r.set(r.get() + 1));
    let read = {
        let Some(chains) = loader.chains() else {
            return Err(scan.end);
        };
        let chains = &chains;
        let read_part = |&(from, to, first): &(usize, usize, usize)| {
            read(chains, source, text, from, to, first)
        };
        std::thread::scope(|s| {
            let mut parts = parts.iter();
            let first = parts.next();
            // A part whose thread cannot be started (the system's limit) is read here.
            let others: Vec<_> = parts
                .map(|p| {
                    std::thread::Builder::new()
                        .spawn_scoped(s, move || read_part(p))
                        .map_err(|_| p)
                })
                .collect();
            let mut read: Vec<Part> = first.map(read_part).into_iter().collect();
            for h in others {
                match h.map(|h| h.join()) {
                    Ok(Ok(p)) => read.push(p),
                    Ok(Err(panic)) => std::panic::resume_unwind(panic),
                    Err(p) => read.push(read_part(p)),
                }
            }
            read
        })
    };
    for part in read {
        loader.append_pieces(part.pieces);
        if part.stopped.is_some() {
            return Ok(part.stopped);
        }
    }
    Ok(scan.resume)
}

/// A run of `-A` lines: where it ends, where the driver reads on, and every 1,024th line's
/// start and number (where the parts may be cut).
struct Scan {
    end: usize,
    resume: Resume,
    marks: Vec<(usize, usize)>,
}

/// The lines from `start` on that begin with `-A `.
fn scan(text: &str, start: usize, number: usize) -> Scan {
    let bytes = text.as_bytes();
    let mut at = start;
    let mut n = number;
    let mut marks = Vec::new();
    loop {
        let rest = bytes.get(at..).unwrap_or_default();
        if !rest.starts_with(b"-A ") {
            return Scan {
                end: at,
                resume: Some((at, n)),
                marks,
            };
        }
        if (n - number) % 1024 == 0 {
            marks.push((at, n));
        }
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                at += i + 1;
                n += 1;
            }
            None => {
                return Scan {
                    end: text.len(),
                    resume: None,
                    marks,
                }
            }
        }
    }
}

/// The run cut into up to `threads` parts of about equal bytes: `(from, to, first line's
/// number)`.
fn cut(scan: &Scan, start: usize, number: usize, threads: usize) -> Vec<(usize, usize, usize)> {
    let len = scan.end - start;
    let mut parts = Vec::new();
    let (mut from, mut first) = (start, number);
    for k in 1..threads {
        let target = start + len / threads * k;
        let Some(&(at, n)) = scan
            .marks
            .iter()
            .find(|(at, _)| *at >= target.max(from + 1))
        else {
            break;
        };
        parts.push((from, at, first));
        (from, first) = (at, n);
    }
    parts.push((from, scan.end, first));
    parts
}

/// What one thread read of its part.
struct Part {
    pieces: Vec<Piece>,
    /// The line it stopped at (offset, number), when it did not read to its part's end.
    stopped: Resume,
}

/// Reads the `-A` lines in bytes `from..to` of `text`, the first being line `first`.
fn read(
    chains: &Chains<'_>,
    source: &str,
    text: &str,
    from: usize,
    to: usize,
    first: usize,
) -> Part {
    let mut reader = Reader {
        chains,
        last_target: Cell::new(None),
        last_chain: None,
        toks: Vec::new(),
        pieces: Vec::new(),
    };
    let mut at = from;
    let mut number = first;
    let mut stopped = None;
    while at < to {
        let rest = text.get(at..to).unwrap_or_default();
        let len = memchr::memchr(b'\n', rest.as_bytes()).unwrap_or(rest.len());
        let raw = rest.get(..len).unwrap_or_default();
        let line = Line {
            source,
            number,
            text: raw.strip_suffix('\r').unwrap_or(raw),
        };
        let ok = reader.line(&line);
        reader.toks.clear();
        if !ok {
            stopped = Some((at, number));
            break;
        }
        at += len + 1;
        number += 1;
    }
    Part {
        pieces: reader.pieces,
        stopped,
    }
}

/// One thread's reader of `-A` lines.
struct Reader<'c, 't> {
    chains: &'c Chains<'c>,
    /// The user chain a jump named last (its key and index): many rules jump to the same one.
    last_target: Cell<Option<(Short, u32)>>,
    /// The chain of the line before, as written there, and its index: most lines name it again.
    last_chain: Option<(&'t str, u32)>,
    /// The vector each line is split into.
    toks: Vec<Token<'t>>,
    /// The rules read so far.
    pieces: Vec<Piece>,
}

impl<'t> Reader<'_, 't> {
    /// Reads one `-A` line into the pieces; false (and the pieces as they were) when the line
    /// is not a plain `-A` command of an existing chain whose rule reads without an error.
    fn line(&mut self, line: &Line<'t>) -> bool {
        let Reader {
            chains,
            last_target,
            last_chain,
            toks,
            pieces,
        } = self;
        let chains = *chains;
        if iptables::tokens_into(line, 0, toks).is_err() {
            return false;
        }
        let (Some(cmd), Some(chain)) = (toks.first(), toks.get(1)) else {
            return false;
        };
        if !matches!(cmd.text.as_str(), "-A" | "--append")
            || toks.iter().any(|t| looks_like_table_option(&t.text))
        {
            return false;
        }
        let (family, kind) = (chains.family, chains.kind);
        let ci = match *last_chain {
            Some((name, ci)) if name == chain.text.as_str() => ci,
            _ => match chains.chain(&chain.text) {
                Some(ci) => ci,
                None => return false,
            },
        };
        let ctx = RuleContext {
            family,
            table: kind,
            chain_exists: &|n| chains.user_chain(last_target, n).is_some(),
            chain_elsewhere: &|n| chains.elsewhere(n),
            hook: Hook::from_name(&chain.text).filter(|h| kind.builtin_chains().contains(h)),
        };
        if pieces.last().is_none_or(|p| p.chain != ci) {
            pieces.push(Piece {
                chain: ci,
                rules: Vec::new(),
                jumps: Vec::new(),
                unresolved: false,
            });
        }
        let Some(piece) = pieces.last_mut() else {
            return false;
        };
        let before = piece.rules.len();
        grow(&mut piece.rules);
        piece.rules.push(Rule::default());
        let more = match piece.rules.last_mut() {
            Some(slot) => parse_rule_into(&ctx, toks.get(2..).unwrap_or(&[]), slot),
            None => Ok(Vec::new()),
        };
        let Ok(more) = more else {
            piece.rules.pop();
            if piece.rules.is_empty() {
                pieces.pop();
            }
            return false;
        };
        for r in more {
            grow(&mut piece.rules);
            piece.rules.push(r);
        }
        let add = AddRule {
            family,
            kind,
            cmd,
            chain,
            counters: None,
        };
        for (r, rule) in piece.rules.iter_mut().enumerate().skip(before) {
            add.locate(rule, line);
            if let Some(name) = rule.target.as_ref().and_then(Target::chain) {
                match (chains.user_chain(last_target, name), u32::try_from(r)) {
                    (Some(t), Ok(r)) => piece.jumps.push((r, t)),
                    _ => piece.unresolved = true,
                }
            }
        }
        // Kept as a slice of this line when the name is written there as it is (not quoted).
        let written = line.text.get(chain.start..chain.end).unwrap_or_default();
        *last_chain = (written == chain.text.as_str()).then_some((written, ci));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Tuning;
    use crate::parse::{parse_with, Options, Parsed};
    use crate::synth::kube_proxy::{generate, Mesh, Spec};
    use std::cell::Cell;

    thread_local! {
        /// Runs read on several threads by this thread's parses.
        pub(super) static RUNS: Cell<usize> = const { Cell::new(0) };
    }

    /// One line at a time.
    const ONE: Tuning = Tuning {
        threads: 1,
        min_run_bytes: usize::MAX,
    };

    fn with(text: &str, tuning: Tuning) -> Result<Parsed, crate::ParseError> {
        parse_with(
            "t",
            text.as_bytes(),
            &Options {
                tuning,
                ..Options::default()
            },
        )
    }

    /// `text` read one line at a time, and with every run of `-A` lines on 2, 3 and 7 threads:
    /// the same ruleset and form, or the same error (place, message, help). Returns the first
    /// and how many runs were read on threads.
    fn same(text: &str) -> (Result<Parsed, crate::ParseError>, usize) {
        let one = with(text, ONE);
        let before = RUNS.with(Cell::get);
        for threads in [2, 3, 7] {
            let many = with(
                text,
                Tuning {
                    threads,
                    min_run_bytes: 1,
                },
            );
            match (&one, &many) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.format, b.format);
                    assert!(a.ruleset == b.ruleset, "{threads} threads: another ruleset");
                }
                (Err(a), Err(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{threads}"),
                _ => panic!("{threads} threads: {one:?} against {many:?}"),
            }
        }
        (one, RUNS.with(Cell::get) - before)
    }

    fn kube(services: usize, mesh: Option<Mesh>) -> String {
        generate(&Spec {
            services,
            mesh,
            ..Spec::default()
        })
        .unwrap()
    }

    /// `text` with line `n` (1-based) replaced by `by`.
    fn replace_line(text: &str, n: usize, by: &str) -> String {
        let mut lines: Vec<&str> = text.split('\n').collect();
        lines[n - 1] = by;
        lines.join("\n")
    }

    /// The 1-based numbers of the `-A` lines at about `fractions` of them.
    fn rule_lines(text: &str, fractions: &[f64]) -> Vec<usize> {
        let rules: Vec<usize> = text
            .split('\n')
            .enumerate()
            .filter(|(_, l)| l.starts_with("-A "))
            .map(|(i, _)| i + 1)
            .collect();
        fractions
            .iter()
            .map(|f| rules[((rules.len() - 1) as f64 * f) as usize])
            .collect()
    }

    #[test]
    fn node_tables_read_alike_on_threads() {
        for mesh in [
            None,
            Some(Mesh::Istio),
            Some(Mesh::Kuma),
            Some(Mesh::Consul),
        ] {
            let text = kube(150, mesh);
            let (one, runs) = same(&text);
            assert!(one.is_ok(), "{one:?}");
            assert!(runs >= 3, "{mesh:?}: {runs} runs on threads");
            let crlf = text.replace('\n', "\r\n");
            assert!(same(&crlf).0.is_ok());
        }
        // The run ends the input, without a newline or COMMIT after it.
        let text = kube(50, None);
        let cut = text.get(..text.rfind("\nCOMMIT").unwrap()).unwrap();
        let (e, runs) = same(cut);
        assert!(runs >= 3);
        assert!(e.unwrap_err().message.contains("never committed"));
    }

    #[test]
    fn small_runs_stay_on_the_calling_thread() {
        let before = RUNS.with(Cell::get);
        with(&kube(20, Some(Mesh::Istio)), Tuning::default()).unwrap();
        assert_eq!(RUNS.with(Cell::get), before);
        let alone = Tuning {
            threads: 1,
            min_run_bytes: 1,
        };
        with(&kube(20, None), alone).unwrap();
        assert_eq!(RUNS.with(Cell::get), before);
    }

    #[test]
    fn errors_in_a_run_are_the_one_line_readers() {
        let text = format!("*filter\n:FWD - [0:0]\nCOMMIT\n{}", kube(120, None));
        let bad = [
            "-A KUBE-NOPE -j RETURN",
            "-A KUBE-SERVICES -p tcp --bogus 1 -j RETURN",
            "-A KUBE-SERVICES -j KUBE-NOPE",
            "-A KUBE-SERVICES -j FWD",
            "-A KUBE-SERVICES -t nat -j RETURN",
            "-A KUBE-SERVICES -m comment --comment \"open",
            "-A KUBE-SERVICES -s 10.0.0.1,2001:db8::1 -j RETURN",
            "-A",
        ];
        for at in rule_lines(&text, &[0.0, 0.3, 0.5, 0.99]) {
            for b in bad {
                let (e, _) = same(&replace_line(&text, at, b));
                let e = e.unwrap_err();
                assert_eq!(e.line, at, "{b}: {e}");
            }
        }
        // Two errors: the first in the input is the one reported.
        let [first, second] = rule_lines(&text, &[0.2, 0.8])[..] else {
            unreachable!()
        };
        let two = replace_line(&replace_line(&text, second, bad[0]), first, bad[2]);
        assert_eq!(same(&two).0.unwrap_err().line, first);
        // A line the one-line reader takes between two runs, then the run goes on.
        let [mid] = rule_lines(&text, &[0.5])[..] else {
            unreachable!()
        };
        let quoted = replace_line(&text, mid, "-A \"KUBE-SERVICES\" -j RETURN");
        let spaced = replace_line(&quoted, mid + 1, " -A KUBE-SERVICES -j RETURN");
        let (ok, runs) = same(&spaced);
        assert!(ok.is_ok() && runs >= 6, "{runs}");
    }

    #[test]
    fn the_whole_ruleset_checks_see_jumps_read_on_threads() {
        let text = kube(120, None);
        let [at] = rule_lines(&text, &[0.6])[..] else {
            unreachable!()
        };
        let looped = replace_line(&text, at, "-A KUBE-MARK-MASQ -j KUBE-SERVICES");
        let e = same(&looped).0.unwrap_err();
        assert!(e.message.contains("jump cycle"), "{e}");
    }
}
