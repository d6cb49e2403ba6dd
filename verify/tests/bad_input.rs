//! Malformed and hostile inputs given to the `sidecar-verify` binary, one file per case in
//! `tests/bad_input/` (the format is in its README): the input, and for each subcommand run on
//! it the exit code, where the error points (`error: SOURCE:LINE:COLUMN: message`, 1-based,
//! columns in characters), what the message says, and bounds on time, memory and stderr.
//! Nothing may panic. Every case runs, and the failures are listed together at the end, so that
//! one run shows everything.
//!
//! Besides the case files: a valid ruleset on stdin, `check`'s exit codes, usage errors, and the
//! snippet under an error's first line.

#![cfg(test)]

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_sidecar-verify");

/// A run's time bound when its case states none: a run that takes longer has gone quadratic or
/// hangs (a debug build parses a 10 MB line in about a second).
const DEFAULT_MAX_SECONDS: f64 = 30.0;

/// One case file; see `tests/bad_input/README.md`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[expect(dead_code, reason = "documentation for the reader of the file")]
    description: String,
    input: Option<String>,
    input_bytes: Option<String>,
    generate: Option<Generate>,
    #[serde(default)]
    stdin: bool,
    run: Vec<RunSpec>,
}

#[derive(serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum Generate {
    /// `prefix`, then `unit` repeated to at least `bytes` bytes (whole units), then `suffix`.
    Repeat {
        prefix: String,
        unit: String,
        bytes: u64,
        #[serde(default)]
        suffix: String,
    },
    /// `n` chains jumping in a line; `reached`: OUTPUT jumps to the first.
    ChainLine { n: usize, reached: bool },
    /// A repository file cut just after the first occurrence of `after`.
    Truncate { file: String, after: String },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RunSpec {
    args: Vec<String>,
    exit: i32,
    stderr_prefix: Option<String>,
    /// A substring of the error's message: the first stderr line after `SOURCE:LINE:COLUMN:`.
    message_contains: Option<String>,
    #[serde(default)]
    stdout_contains: Vec<String>,
    max_seconds: Option<f64>,
    max_rss_mib: Option<u64>,
    max_stderr_bytes: Option<usize>,
}

/// The input of a case: bytes in memory, or a stream made on the fly.
enum Input {
    Bytes(Vec<u8>),
    /// `prefix`, `units` bytes of `unit` repeated (whole units), `suffix`.
    Repeat {
        prefix: Vec<u8>,
        unit: Vec<u8>,
        units: u64,
        suffix: Vec<u8>,
    },
}

impl Input {
    /// Its size in bytes.
    fn len(&self) -> u64 {
        match self {
            Input::Bytes(b) => b.len() as u64,
            Input::Repeat {
                prefix,
                units,
                suffix,
                ..
            } => (prefix.len() + suffix.len()) as u64 + units,
        }
    }

    /// Writes the whole input to `w`, stopping quietly when the reader goes away; the bytes
    /// written.
    fn write_to(&self, w: &mut impl std::io::Write) -> u64 {
        match self {
            Input::Bytes(b) => {
                if w.write_all(b).is_ok() {
                    b.len() as u64
                } else {
                    0
                }
            }
            Input::Repeat {
                prefix,
                unit,
                units,
                suffix,
            } => {
                if w.write_all(prefix).is_err() {
                    return 0;
                }
                // Whole units from a block that starts with one; a short write resumes where
                // it stopped, inside a unit.
                let block = unit.repeat((1 << 16) / unit.len() + 1);
                let mut done = 0u64;
                while done < *units {
                    let from = usize::try_from(done % unit.len() as u64).unwrap();
                    let n = (block.len() - from).min(usize::try_from(*units - done).unwrap());
                    match w.write(&block[from..from + n]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => done += k as u64,
                    }
                }
                let mut written = prefix.len() as u64 + done;
                if done == *units && w.write_all(suffix).is_ok() {
                    written += suffix.len() as u64;
                }
                written
            }
        }
    }
}

/// `\xNN` as one byte; everything else as it is.
fn unescape_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn chain_line(n: usize, reached: bool) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(n * 40 + 200);
    s.push_str(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
    );
    for i in 0..n {
        writeln!(s, ":C{i:06} - [0:0]").unwrap();
    }
    if reached {
        s.push_str("-A OUTPUT -p tcp -j C000000\n");
    }
    for i in 1..n {
        writeln!(s, "-A C{:06} -j C{i:06}", i - 1).unwrap();
    }
    writeln!(s, "-A C{:06} -p tcp -j REDIRECT --to-ports 15001", n - 1).unwrap();
    s.push_str("COMMIT\n");
    s.into_bytes()
}

fn case_input(c: &CaseFile, root: &Path) -> Input {
    match (&c.input, &c.input_bytes, &c.generate) {
        (Some(t), None, None) => Input::Bytes(t.as_bytes().to_vec()),
        (None, Some(t), None) => Input::Bytes(unescape_bytes(t)),
        (
            None,
            None,
            Some(Generate::Repeat {
                prefix,
                unit,
                bytes,
                suffix,
            }),
        ) => {
            assert!(!unit.is_empty(), "a repeat's unit is empty");
            let unit_len = unit.len() as u64;
            Input::Repeat {
                prefix: prefix.as_bytes().to_vec(),
                unit: unit.as_bytes().to_vec(),
                units: bytes.div_ceil(unit_len) * unit_len,
                suffix: suffix.as_bytes().to_vec(),
            }
        }
        (None, None, Some(Generate::ChainLine { n, reached })) => {
            Input::Bytes(chain_line(*n, *reached))
        }
        (None, None, Some(Generate::Truncate { file, after })) => {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let at = text
                .find(after.as_str())
                .expect("`after` occurs in the file");
            Input::Bytes(text.as_bytes()[..at + after.len()].to_vec())
        }
        _ => panic!("a case has exactly one of input, input_bytes, generate"),
    }
}

/// What one measured run gave.
struct Measured {
    /// The exit code; None when killed (timeout or signal).
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
    /// Peak resident set of the child, in KiB (`ru_maxrss`).
    max_rss_kib: u64,
    /// Bytes of the input written to stdin before the child stopped reading.
    stdin_written: u64,
}

/// Waits for `pid` with `wait4`, killing it after `limit`; its exit code and peak RSS.
#[expect(
    unsafe_code,
    reason = "wait4 is the one way to get a child's own rusage"
)]
fn wait4_with_timeout(child: &mut Child, limit: Duration) -> (Option<i32>, u64) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let deadline = Instant::now() + limit;
    let mut killed = false;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: zeroed rusage is a valid value of a plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if killed { 0 } else { libc::WNOHANG };
        // SAFETY: both pointers point at live locals of the right types; `pid` is our child,
        // which std has not reaped (we never call its wait methods).
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            let code = if !killed && libc::WIFEXITED(status) {
                Some(libc::WEXITSTATUS(status))
            } else {
                None
            };
            return (code, u64::try_from(usage.ru_maxrss).unwrap_or(0));
        }
        assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
        if Instant::now() >= deadline {
            let _ = child.kill();
            killed = true;
            continue;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `sidecar-verify ARGS` with `input` on stdin (when given), measuring it. Stdout and
/// stderr go to files: either may be large, and a pipe would need a reader while we wait.
fn run_measured(args: &[String], input: Option<&Input>, name: &str, limit: Duration) -> Measured {
    let out_path = temp_path("stdout", name);
    let err_path = temp_path("stderr", name);
    let _cleanup = TempFiles(vec![out_path.clone(), err_path.clone()]);
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn sidecar-verify");
    let (code, max_rss_kib, stdin_written) = std::thread::scope(|s| {
        let writer = input.map(|inp| {
            let mut pipe = child.stdin.take().unwrap();
            s.spawn(move || inp.write_to(&mut pipe))
        });
        let (code, rss) = wait4_with_timeout(&mut child, limit);
        let written = writer.map_or(0, |w| w.join().unwrap());
        (code, rss, written)
    });
    let elapsed = start.elapsed();
    Measured {
        code,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
        elapsed,
        max_rss_kib,
        stdin_written,
    }
}

/// What is wrong with the first stderr line: it must start with `prefix` (when given) and its
/// message, what follows `error: SOURCE:LINE:COLUMN:`, must contain `message` (when given). The
/// source is skipped before the message is searched: a temp path holds the case's name.
fn first_line_problems(
    first: &str,
    source: &str,
    prefix: Option<&str>,
    message: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(p) = prefix {
        let want = p.replace("{source}", source);
        if !first.starts_with(&want) {
            problems.push(format!("first stderr line does not start with `{want}`"));
        }
    }
    if let Some(m) = message {
        let got = first
            .strip_prefix(&format!("error: {source}:"))
            .and_then(|rest| rest.splitn(3, ':').nth(2))
            .unwrap_or("");
        if !got.contains(m) {
            problems.push(format!("the message does not contain `{m}`"));
        }
    }
    problems
}

/// What the runs of one case file gave: a table row per run, and a report per run that failed.
#[derive(Default)]
struct Outcome {
    rows: Vec<String>,
    failures: Vec<String>,
}

/// Runs every subcommand a case file names on its input.
fn run_case_file(path: &Path, root: &Path) -> Outcome {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let case: CaseFile =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let input = case_input(&case, root);
    let file = if case.stdin {
        None
    } else {
        let p = temp_path("rules", &name);
        let mut f = File::create(&p).unwrap();
        input.write_to(&mut f);
        Some(TempFiles(vec![p]))
    };
    let source = file.as_ref().map_or("<stdin>".to_string(), |f| {
        f.0[0].to_str().unwrap().to_string()
    });
    let input_arg = if case.stdin { "-" } else { source.as_str() };
    let streamed = case.stdin && matches!(input, Input::Repeat { .. });
    let mut outcome = Outcome::default();
    for spec in &case.run {
        let mut args = spec.args.clone();
        args.insert(1, input_arg.to_string());
        let limit = Duration::from_secs_f64(spec.max_seconds.unwrap_or(DEFAULT_MAX_SECONDS));
        // Killed at twice the bound, so that a run over it is still measured.
        let m = run_measured(
            &args,
            case.stdin.then_some(&input),
            &name,
            limit * 2 + Duration::from_secs(5),
        );
        let stderr = String::from_utf8_lossy(&m.stderr);
        let stdout = String::from_utf8_lossy(&m.stdout);
        let mut problems = first_line_problems(
            stderr.lines().next().unwrap_or(""),
            &source,
            spec.stderr_prefix.as_deref(),
            spec.message_contains.as_deref(),
        );
        if m.code != Some(spec.exit) {
            problems.push(format!("exit {:?}, expected {}", m.code, spec.exit));
        }
        if stderr.contains("panicked") || stderr.contains("overflow") {
            problems.push("stderr says it panicked or overflowed".to_string());
        }
        if spec.exit == 2 && spec.stderr_prefix.is_none() {
            problems.push("exit 2 needs a stderr_prefix".into());
        }
        if let Some(max) = spec.max_stderr_bytes.filter(|max| m.stderr.len() > *max) {
            problems.push(format!("stderr is {} bytes, bound {max}", m.stderr.len()));
        }
        for want in &spec.stdout_contains {
            if !stdout.contains(want.as_str()) {
                problems.push(format!("stdout lacks `{want}`"));
            }
        }
        if m.elapsed > limit {
            problems.push(format!("took {:.1?}, bound {limit:?}", m.elapsed));
        }
        let rss_mib = m.max_rss_kib as f64 / 1024.0;
        if let Some(max) = spec.max_rss_mib.filter(|max| m.max_rss_kib > max * 1024) {
            problems.push(format!("peak RSS {rss_mib:.0} MiB, bound {max} MiB"));
        }
        // A streamed input: the child must stop reading long before the end.
        if streamed && m.stdin_written >= input.len() {
            problems.push(format!(
                "the child read all {} bytes of its stdin; it must stop at the line limit",
                input.len()
            ));
        }
        outcome.rows.push(format!(
            "{name:40} {:44} exit {:>4} {:>7.2} s {:>6.0} MiB{}",
            spec.args.join(" "),
            m.code.map_or("none".to_string(), |c| c.to_string()),
            m.elapsed.as_secs_f64(),
            rss_mib,
            if streamed {
                format!("  (stdin: {} MiB written)", m.stdin_written >> 20)
            } else {
                String::new()
            }
        ));
        if !problems.is_empty() {
            outcome.failures.push(format!(
                "--- {name}: sidecar-verify {}: {}\nstdout:\n{}stderr:\n{}",
                args.join(" "),
                problems.join("; "),
                excerpt(&stdout),
                excerpt(&stderr)
            ));
        }
    }
    outcome
}

/// Every case file in `tests/bad_input/`, each subcommand it names, with its exit code, stderr
/// prefix and message, stdout, time, memory and stderr bounds. The bounds are for the debug
/// build `cargo test` makes; a release build runs every case in a fraction of them. A table of
/// what each run took is printed (`--nocapture` shows it).
#[test]
fn bad_inputs_one_file_per_case() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    // 81 when this was written.
    assert!(
        files.len() >= 81,
        "{} case files in {}",
        files.len(),
        dir.display()
    );
    // Two cases at a time at most (a core each on this 2-core machine): memory bounds are per
    // process, and the time bounds leave room for a neighbour.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let next = AtomicUsize::new(0);
    let outcomes: Vec<Mutex<Outcome>> = files.iter().map(|_| Mutex::default()).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                *outcomes[i].lock().unwrap() = run_case_file(path, &root);
            });
        }
    });
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.into_inner().unwrap())
        .collect();
    let rows: Vec<&str> = outcomes
        .iter()
        .flat_map(|o| &o.rows)
        .map(String::as_str)
        .collect();
    let failures: Vec<&str> = outcomes
        .iter()
        .flat_map(|o| &o.failures)
        .map(String::as_str)
        .collect();
    println!("{}", rows.join("\n"));
    assert!(
        failures.is_empty(),
        "{} run(s) of the case files failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Temp files removed on drop.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn temp_path(tag: &str, name: &str) -> PathBuf {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "sidecar-verify-bad-input-{}-{n}-{name}.{tag}",
        std::process::id()
    ))
}

/// Stderr for a report: its first lines, each cut to a readable length, and its size when cut.
fn excerpt(stderr: &str) -> String {
    const LINES: usize = 12;
    const WIDTH: usize = 200;
    let mut out = String::new();
    let mut cut = false;
    for (i, line) in stderr.lines().enumerate() {
        if i == LINES {
            cut = true;
            break;
        }
        match line.char_indices().nth(WIDTH) {
            Some((end, _)) => {
                out.push_str(&line[..end]);
                out.push_str(" [...]");
                cut = true;
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    if cut {
        out.push_str(&format!(
            "[stderr cut here; {} bytes in all]\n",
            stderr.len()
        ));
    }
    out
}

#[test]
fn valid_ruleset_on_stdin_parses() {
    let rules = "\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
";
    let mut child = Command::new(BIN)
        .args(["parse", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sidecar-verify");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.is_empty(), "stderr:\n{stderr}");
    for want in [
        "*nat",
        "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
        "COMMIT",
    ] {
        assert!(stdout.contains(want), "stdout lacks `{want}`:\n{stdout}");
    }
}

/// `check` exits 0 when every invariant holds, 1 when one is violated, 2 on bad input.
#[test]
fn check_exit_codes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("check")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run sidecar-verify");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The embedded classic ruleset violates identity-symmetry (Istio's gid rules after its uid
    // rules); the uid-only ruleset passes with its profile.
    let (code, stdout, _) = run(&[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("13 invariants: 10 hold, 1 violated, 0 unknown, 2 vacuous"),
        "{stdout}"
    );
    let uid_only = root.join("corpus/rulesets/uid-only.rules");
    let uid_only_profile = root.join("corpus/profiles/uid-only.toml");
    let (code, stdout, _) = run(&[
        uid_only.to_str().unwrap(),
        "--profile",
        uid_only_profile.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stdout}");
    let broken = root.join("corpus/broken/no-uid-return.rules");
    let (code, stdout, _) = run(&[broken.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, Some(1), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let inv = v["invariants"].as_array().unwrap();
    let violated: Vec<&str> = inv
        .iter()
        .filter(|i| i["status"] == "violated")
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(violated, ["proxy-not-recaptured", "identity-symmetry"]);
    let w = &inv[0]["witness"];
    assert_eq!(w["uid"], 1337);
    assert_ne!(w["gid"], 1337);
    let (code, _, stderr) = run(&["/nonexistent/rules"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = run(&["--profile", "/nonexistent.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
}

/// Usage errors of the built subcommands exit 2 with a message, never 0 or a panic.
#[test]
fn usage_errors_exit_2() {
    let profile = std::env::temp_dir().join(format!("sv-bad-profile-{}.toml", std::process::id()));
    std::fs::write(&profile, "proxy_uid = \"x\"\n").unwrap();
    // Each command line split at spaces; `{profile}` is that bad profile's path.
    let cases = [
        ("trace", "--dst"),
        ("trace --dst 10.1.0.999 --dport 80", "invalid"),
        ("trace --dst 10.1.0.99 --dport 70000", "70000"),
        (
            "trace --dst 10.1.0.99 --dport 80 --src ::1",
            "different families",
        ),
        (
            "trace --dst 10.1.0.99 --dport 80 --profile {profile}",
            "proxy_uid",
        ),
        (
            "scenarios --profile /nonexistent/profile.toml",
            "cannot read profile",
        ),
        ("scenarios /nonexistent/rules", "cannot read"),
        ("frobnicate", "unrecognized subcommand"),
        ("kernel --pod-ip 10.0.0.1", "cannot change it"),
        ("kernel --flows many", "invalid value"),
    ];
    let mut failures = Vec::new();
    for (line, want) in cases {
        let args: Vec<String> = line
            .split(' ')
            .map(|a| a.replace("{profile}", &profile.display().to_string()))
            .collect();
        let out = Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run sidecar-verify");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) || !stderr.contains(want) || stderr.contains("panicked") {
            failures.push(format!(
                "sidecar-verify {args:?}: {} (want `{want}`)\n{stderr}",
                out.status
            ));
        }
    }
    let _ = std::fs::remove_file(&profile);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The snippet under the first line: it starts with its own header (the message is not repeated,
/// even when it is long enough to wrap), and that header names the same line and column.
#[test]
fn snippet_agrees_with_the_first_line() {
    // A message that wraps: a jump cycle through twelve long chain names.
    let mut cycle = String::from("*nat\n");
    for i in 0..12 {
        cycle.push_str(&format!(":ISTIO_CHAIN_NUMBER_{i:02} - [0:0]\n"));
    }
    for i in 0..12 {
        cycle.push_str(&format!(
            "-A ISTIO_CHAIN_NUMBER_{i:02} -j ISTIO_CHAIN_NUMBER_{:02}\n",
            (i + 1) % 12
        ));
    }
    cycle.push_str("COMMIT\n");
    let inputs = [
        ("long_message", cycle, 25, 29),
        (
            "cidr_prefix_33",
            "*filter\n-A OUTPUT -d 10.0.0.0/33 -j ACCEPT\nCOMMIT\n".to_string(),
            2,
            14,
        ),
    ];
    let mut failures = Vec::new();
    for (name, input, line, column) in inputs {
        let out = run_measured(
            &["parse".to_string(), "-".to_string()],
            Some(&Input::Bytes(input.into_bytes())),
            name,
            Duration::from_secs_f64(DEFAULT_MAX_SECONDS),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let first_ok = lines
            .first()
            .is_some_and(|l| l.starts_with(&format!("error: <stdin>:{line}:{column}: ")));
        let header = format!("\u{256d}\u{2500}[<stdin>:{line}:{column}]");
        let second_ok = lines.get(1).is_some_and(|l| l.trim_start() == header);
        if !first_ok || !second_ok {
            failures.push(format!(
                "--- {name}: expected the second line to be `{header}`\n{}",
                excerpt(&stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
