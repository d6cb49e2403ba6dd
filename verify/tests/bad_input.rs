//! Malformed rulesets given to the `sidecar-verify parse` binary: every one must be refused with
//! exit code 2 and a first stderr line `error: SOURCE:LINE:COLUMN: message` that points at the
//! offending token (1-based line, column counted in characters), and nothing may panic.
//!
//! The cases are a table; all of them run, and the failures are listed together at the end so
//! that one run shows everything.

#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers; a panic is a test failure"
)]

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_sidecar-verify");

/// How long one run may take. A debug build parses a 10 MB line in about a second; a run that
/// takes longer than this has gone quadratic (or hangs) and is a failure of its own.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An error about a huge line must not echo the line: stderr stays under this.
const SMALL_STDERR: usize = 10 * 1024;

/// Ten megabytes, the size of the huge-line cases.
const TEN_MB: usize = 10 * 1024 * 1024;

/// One malformed input and what the error must say about it.
struct Case {
    /// Short name, used in failure reports and in the temp file's name.
    name: &'static str,
    /// The input bytes.
    input: Vec<u8>,
    /// Expected 1-based line.
    line: usize,
    /// Expected 1-based column, in characters.
    column: usize,
    /// A substring the first stderr line must contain.
    contains: &'static str,
    /// Give the input on stdin (`parse -`) instead of as a file.
    stdin: bool,
    /// An upper bound on the size of stderr, for the huge inputs.
    max_stderr: Option<usize>,
}

fn case(
    name: &'static str,
    input: impl Into<Vec<u8>>,
    line: usize,
    column: usize,
    contains: &'static str,
) -> Case {
    Case {
        name,
        input: input.into(),
        line,
        column,
        contains,
        stdin: false,
        max_stderr: None,
    }
}

impl Case {
    fn via_stdin(mut self) -> Case {
        self.stdin = true;
        self
    }

    fn small_stderr(mut self) -> Case {
        self.max_stderr = Some(SMALL_STDERR);
        self
    }
}

/// `prefix`, then `unit` repeated to 10 MB or a little more, then `suffix`.
fn huge(prefix: &str, unit: &str, suffix: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(TEN_MB + prefix.len() + suffix.len() + unit.len());
    v.extend_from_slice(prefix.as_bytes());
    while v.len() < TEN_MB + prefix.len() {
        v.extend_from_slice(unit.as_bytes());
    }
    v.extend_from_slice(suffix.as_bytes());
    v
}

/// The table. Columns were checked by hand against the line (the comment under a case shows
/// where it points when that is not obvious).
fn cases() -> Vec<Case> {
    vec![
        // ----- structure of a save file -----
        case(
            "truncated_missing_commit",
            "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p tcp -j REDIRECT --to-ports 15001\n",
            1,
            1,
            "missing COMMIT",
        ),
        case("truncated_missing_commit_stdin", "*nat\n:OUTPUT ACCEPT [0:0]\n", 1, 1, "missing COMMIT").via_stdin(),
        case("rule_before_table", "-A OUTPUT -j ACCEPT\nCOMMIT\n", 1, 1, "rule before any table"),
        case("chain_before_table", ":OUTPUT ACCEPT [0:0]\n*nat\nCOMMIT\n", 1, 1, "chain before any table"),
        case("commit_without_table", "*nat\nCOMMIT\nCOMMIT\n", 3, 1, "`COMMIT` without a table"),
        case("unknown_table", "*natt\nCOMMIT\n", 1, 2, "unknown table `natt`"),
        case("unknown_table_command", "iptables -t natt -A OUTPUT -j RETURN\n", 1, 13, "unknown table `natt`"),
        case("table_not_committed_before_next", "*nat\n*filter\nCOMMIT\n", 2, 1, "is not committed"),
        case("table_option_in_restore", "*nat\n-A OUTPUT -t nat -j RETURN\nCOMMIT\n", 2, 11, "`-t` cannot be used"),
        case("nftables_script", "add table inet x\nadd chain inet x y\n", 1, 1, "nftables"),
        case(
            "restore_line_in_command_form",
            "iptables -t nat -N FOO\n*nat\nCOMMIT\n",
            2,
            1,
            "does not fit the input's form",
        ),
        case(
            "command_line_in_restore_form",
            "*nat\n-A OUTPUT -j RETURN\niptables -t nat -A OUTPUT -j RETURN\nCOMMIT\n",
            3,
            1,
            "does not fit the input's form",
        ),
        // ----- chains and policies -----
        case("unknown_policy", "*nat\n:OUTPUT FOO [0:0]\nCOMMIT\n", 2, 9, "bad policy `FOO`"),
        case("builtin_chain_policy_dash", "*nat\n:OUTPUT - [0:0]\nCOMMIT\n", 2, 9, "bad policy `-`"),
        case("user_chain_policy_unknown", "*nat\n:ISTIO_OUTPUT FOO [0:0]\nCOMMIT\n", 2, 15, "bad policy `FOO`"),
        // iptables-restore refuses a policy on a user chain (libiptc: not a built-in chain).

        case(
            "insert_index_too_big",
            "*nat\n-A OUTPUT -j RETURN\n-I OUTPUT 3 -j RETURN\nCOMMIT\n",
            3,
            11,
            "index of insertion too big",
        ),
        case("new_chain_exists", "*nat\n:FOO - [0:0]\n-N FOO\nCOMMIT\n", 3, 4, "chain `FOO` already exists"),
        case("jump_undefined_chain", "*nat\n-A OUTPUT -p tcp -j ISTIO_OUTPUT\nCOMMIT\n", 2, 21, "jump to undefined chain `ISTIO_OUTPUT`"),
        case(
            "goto_undefined_chain",
            "*nat\n:FOO - [0:0]\n-A OUTPUT -p tcp -g ISTIO_OUTPUT\nCOMMIT\n",
            3,
            21,
            "goto to undefined chain `ISTIO_OUTPUT`",
        ),
        // Points at the `A` of the jump that closes the loop.
        case("jump_cycle", "*nat\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-A B -j A\nCOMMIT\n", 5, 9, "jump cycle"),
        case("jump_to_itself", "*nat\n:A - [0:0]\n-A A -j A\nCOMMIT\n", 3, 9, "jump cycle"),
        // ----- targets where the kernel refuses them -----
        case(
            "redirect_outside_nat",
            "*filter\n-A OUTPUT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n",
            2,
            21,
            "only valid in the `nat` table",
        ),
        case(
            "tproxy_in_mangle_output",
            "*mangle\n-A OUTPUT -p tcp -j TPROXY --on-port 15006 --tproxy-mark 0x1/0x1\nCOMMIT\n",
            2,
            21,
            "where the kernel refuses it",
        ),
        case(
            "tproxy_outside_mangle",
            "*nat\n-A PREROUTING -p tcp -j TPROXY --on-port 15006\nCOMMIT\n",
            2,
            25,
            "only valid in the `mangle` table",
        ),
        case(
            "redirect_to_ports_without_protocol",
            "*nat\n-A OUTPUT -j REDIRECT --to-ports 15001\nCOMMIT\n",
            2,
            14,
            "needs `-p tcp`",
        ),
        // iptables checks the protocol when it reads `--to-ports` (libxt_REDIRECT: "Need TCP, UDP,
        // SCTP or DCCP with port specification"), so a `-p tcp` after it comes too late.
        case(
            "redirect_to_ports_before_protocol",
            "*nat\n-A OUTPUT -j REDIRECT --to-ports 15001 -p tcp\nCOMMIT\n",
            2,
            14,
            "needs `-p tcp`",
        ),
        // ----- addresses -----
        case("cidr_prefix_33", "*filter\n-A OUTPUT -d 10.0.0.0/33 -j ACCEPT\nCOMMIT\n", 2, 14, "prefix length `/33`"),
        case(
            "cidr_prefix_129",
            "# Generated by ip6tables-save v1.8.9\n*filter\n-A OUTPUT -d fd00::/129 -j ACCEPT\nCOMMIT\n",
            3,
            14,
            "prefix length `/129`",
        ),
        case("garbage_address", "*filter\n-A OUTPUT -s 10.0.0.x -j ACCEPT\nCOMMIT\n", 2, 14, "invalid address `10.0.0.x`"),
        case("octet_over_255", "*filter\n-A OUTPUT -s 300.1.1.1 -j ACCEPT\nCOMMIT\n", 2, 14, "invalid address `300.1.1.1`"),
        // iptables: "invalid mask `-1' specified"; the address part is fine.
        case("negative_mask", "*filter\n-A OUTPUT -s 10.0.0.1/-1 -j ACCEPT\nCOMMIT\n", 2, 14, "mask"),
        case("empty_mask", "*filter\n-A OUTPUT -s 10.0.0.1/ -j ACCEPT\nCOMMIT\n", 2, 14, "mask"),
        case("ipv6_in_ipv4_rule", "*filter\n-A OUTPUT -d fd00::1 -j ACCEPT\nCOMMIT\n", 2, 14, "IPv6 address `fd00::1` in an IPv4 rule"),
        case(
            "ipv4_in_ip6tables_save",
            "# Generated by ip6tables-save v1.8.9\n*filter\n-A OUTPUT -d 10.0.0.1 -j ACCEPT\nCOMMIT\n",
            3,
            14,
            "IPv4 address `10.0.0.1` in an IPv6 rule",
        ),
        case(
            "ipv4_in_ip6tables_command",
            "ip6tables -t nat -A OUTPUT -d 127.0.0.1/32 -j RETURN\n",
            1,
            31,
            "IPv4 address `127.0.0.1` in an IPv6 rule",
        ),
        // iptables: "! not allowed with multiple source or destination IP addresses".
        case(
            "negated_address_list",
            "*filter\n-A OUTPUT ! -s 10.0.0.1,10.0.0.2 -j ACCEPT\nCOMMIT\n",
            2,
            16,
            "several source or destination addresses",
        ),
        // ----- options -----
        case(
            "unknown_option_did_you_mean",
            "*nat\n-A OUTPUT -p tcp --dportt 80 -j ACCEPT\nCOMMIT\n",
            2,
            18,
            "did you mean `--dport`",
        ),
        case(
            "unknown_option_did_you_mean_stdin",
            "*nat\n-A OUTPUT -p tcp --dportt 80 -j ACCEPT\nCOMMIT\n",
            2,
            18,
            "did you mean `--dport`",
        )
        .via_stdin(),
        // The option follows `-j REDIRECT` and the suggestion is REDIRECT's: it is the target's.
        case(
            "unknown_target_option",
            "*nat\n-A OUTPUT -p tcp -j REDIRECT --to-portz 15001\nCOMMIT\n",
            2,
            30,
            "`--to-portz` for target `REDIRECT`",
        ),
        case(
            "unknown_match_option_known_module",
            "*filter\n-A OUTPUT -m owner --uid 5 -j ACCEPT\nCOMMIT\n",
            2,
            20,
            "unknown option `--uid` for match `owner`",
        ),
        case("port_over_65535", "*filter\n-A OUTPUT -p tcp --dport 65536 -j ACCEPT\nCOMMIT\n", 2, 26, "out of range"),
        case(
            "port_range_reversed",
            "*filter\n-A OUTPUT -p tcp --dport 9000:8000 -j ACCEPT\nCOMMIT\n",
            2,
            26,
            "port range `9000:8000` is empty",
        ),
        case(
            "redirect_port_range_reversed",
            "*nat\n-A OUTPUT -p tcp -j REDIRECT --to-ports 2-1\nCOMMIT\n",
            2,
            41,
            "port range `2-1` is empty",
        ),
        case(
            "unterminated_quote",
            "*filter\n-A OUTPUT -m comment --comment \"oops -j ACCEPT\nCOMMIT\n",
            2,
            32,
            "unterminated quoted string",
        ),
        case("negation_twice", "*filter\n-A OUTPUT ! ! -s 10.0.0.1 -j ACCEPT\nCOMMIT\n", 2, 13, "`!` given twice"),
        case("option_missing_value_at_eol", "*filter\n-A OUTPUT -j ACCEPT -s\nCOMMIT\n", 2, 21, "option `-s` needs a value"),
        case("unknown_protocol", "*filter\n-A OUTPUT -p tcpp -j ACCEPT\nCOMMIT\n", 2, 14, "unknown protocol `tcpp`"),
        case(
            "interface_name_too_long",
            "*filter\n-A OUTPUT -o averyveryverylongname0 -j ACCEPT\nCOMMIT\n",
            2,
            14,
            "longer than 15 characters",
        ),
        // The problem is `-i` (column 11), not the target.
        case("input_interface_in_output", "*filter\n-A OUTPUT -i eth0 -j ACCEPT\nCOMMIT\n", 2, 11, "`-i` cannot be used in OUTPUT"),
        case("mark_not_a_number", "*mangle\n-A OUTPUT -m mark --mark abc -j ACCEPT\nCOMMIT\n", 2, 26, "invalid mark `abc`"),
        case("set_mark_not_a_number", "*mangle\n-A OUTPUT -j MARK --set-mark abc\nCOMMIT\n", 2, 30, "invalid mark `abc`"),
        // ----- columns count characters -----
        // `"héllo wörld"` is 13 characters and 15 bytes; 99999 starts at character 61.
        case(
            "column_counts_characters",
            "*filter\n-A OUTPUT -m comment --comment \"h\u{e9}llo w\u{f6}rld\" -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n",
            2,
            61,
            "out of range",
        ),
        case("crlf_line_endings", "*filter\r\n-A OUTPUT -p tcp --dport 99999 -j ACCEPT\r\nCOMMIT\r\n", 2, 26, "out of range"),
        // ----- bytes that are not text -----
        // A gzip header: 0x8b at byte 1 is the first byte that is not UTF-8.
        case(
            "binary_garbage",
            b"\x1f\x8b\x08\x08\xa3\xff\x5e\x66\x02\x03\xed\xfd\x0b\x7c\x54\xd5\xf9\x3f\x8e\xcf\x99\xff".to_vec(),
            1,
            2,
            "invalid UTF-8",
        ),
        case(
            "binary_garbage_stdin",
            b"\x7fELF\x02\x01\x01\xff\xfe\x13\x37\x80\x81\n\xc3\x28zz\n".to_vec(),
            1,
            8,
            "invalid UTF-8",
        )
        .via_stdin(),
        // A PNG header: byte 0 (0x89) is already not text; the NUL comes later, on line 3.
        case("binary_png_first_bad_byte", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec(), 1, 1, "invalid UTF-8"),
        case(
            "nul_byte_mid_line",
            b"*filter\n-A OUTPUT -s 10.0\x00.0.1 -j ACCEPT\nCOMMIT\n".to_vec(),
            2,
            18,
            "NUL byte",
        ),
        // `é` is one character: the NUL after it is character 34.
        case(
            "nul_byte_after_multibyte_char",
            b"*filter\n-A OUTPUT -m comment --comment \"\xc3\xa9\x00\" -j ACCEPT\nCOMMIT\n".to_vec(),
            2,
            34,
            "NUL byte",
        ),
        case(
            "invalid_utf8_on_line_3",
            b"*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m comment --comment \"caf\xe9\" -j ACCEPT\nCOMMIT\n".to_vec(),
            3,
            36,
            "invalid UTF-8",
        ),
        case(
            "invalid_utf8_after_multibyte_char",
            b"*filter\n-A OUTPUT -m comment --comment \"\xc3\xa9\xff\" -j ACCEPT\nCOMMIT\n".to_vec(),
            2,
            34,
            "invalid UTF-8",
        ),
        // ----- a 10 MB line -----
        case(
            "ten_mb_line_repeated_option",
            huge("*filter\n-A OUTPUT ", "-p tcp ", "\nCOMMIT\n"),
            2,
            18,
            "given more than once",
        )
        .small_stderr(),
        case(
            "ten_mb_line_bogus_token",
            huge("*filter\n-A OUTPUT ", "x", "\nCOMMIT\n"),
            2,
            11,
            "unexpected argument",
        )
        .small_stderr(),
        case(
            "ten_mb_line_bogus_option",
            huge("*filter\n-A OUTPUT --", "x", " 1\nCOMMIT\n"),
            2,
            11,
            "unknown option",
        )
        .small_stderr(),
        case(
            "ten_mb_comment",
            huge("*filter\n-A OUTPUT -m comment --comment \"", "x", "\" -j ACCEPT\nCOMMIT\n"),
            2,
            32,
            "comment longer than 255 bytes",
        )
        .small_stderr(),
    ]
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

/// What a run of the binary gave.
struct Outcome {
    /// None when the run was killed after [`TIMEOUT`].
    status: Option<ExitStatus>,
    stderr: Vec<u8>,
    elapsed: Duration,
}

/// Waits for `child`, killing it after [`TIMEOUT`].
fn wait_with_timeout(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(st) = child.try_wait().expect("wait for sidecar-verify") {
            return Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `sidecar-verify ARGS`, with `stdin` on its standard input; stderr goes to a file (it can be
/// huge when an error echoes a huge line, and a pipe would need a reader while we wait).
fn run(args: &[&str], stdin: Option<&[u8]>, name: &str) -> Outcome {
    let err_path = temp_path("stderr", name);
    let _cleanup = TempFiles(vec![err_path.clone()]);
    let err_file = File::create(&err_path).expect("create stderr file");
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()
        .expect("spawn sidecar-verify");
    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let bytes = bytes.to_vec();
        // The child may stop reading early; a broken pipe is not our failure.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let status = wait_with_timeout(&mut child);
    if let Some(w) = writer {
        let _ = w.join();
    }
    let elapsed = start.elapsed();
    let mut stderr = Vec::new();
    File::open(&err_path)
        .and_then(|mut f| f.read_to_end(&mut stderr))
        .expect("read stderr file");
    Outcome {
        status,
        stderr,
        elapsed,
    }
}

/// Checks one case; the description of what is wrong, if anything.
fn check(c: &Case) -> Option<String> {
    let (outcome, source) = if c.stdin {
        (
            run(&["parse", "-"], Some(&c.input), c.name),
            "<stdin>".to_string(),
        )
    } else {
        let path = temp_path("rules", c.name);
        let _cleanup = TempFiles(vec![path.clone()]);
        std::fs::write(&path, &c.input).expect("write input file");
        let p = path.to_str().expect("temp path is UTF-8").to_string();
        (run(&["parse", &p], None, c.name), p)
    };
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    let first = stderr.lines().next().unwrap_or("");
    let prefix = format!("error: {source}:{}:{}: ", c.line, c.column);
    let mut problems = Vec::new();
    match outcome.status {
        None => problems.push(format!("timed out after {TIMEOUT:?} (killed)")),
        Some(st) if st.code() != Some(2) => problems.push(format!("{st}, expected exit code 2")),
        Some(_) => {}
    }
    if !first.starts_with(&prefix) {
        problems.push(format!("first line does not start with `{prefix}`"));
    }
    // The message: what follows `SOURCE:LINE:COLUMN: ` (the source, a temp path holding the
    // case's name, must not be what matches).
    let message = first
        .strip_prefix(&format!("error: {source}:"))
        .and_then(|rest| rest.splitn(3, ':').nth(2))
        .unwrap_or("");
    if !message.contains(c.contains) {
        problems.push(format!("message does not contain `{}`", c.contains));
    }
    if stderr.contains("panicked") {
        problems.push("stderr says `panicked`".to_string());
    }
    if let Some(max) = c.max_stderr {
        if outcome.stderr.len() >= max {
            problems.push(format!(
                "stderr is {} bytes, expected under {max}",
                outcome.stderr.len()
            ));
        }
    }
    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "--- {} ({}, {:.1?}): {}\n{}",
        c.name,
        if c.stdin { "stdin" } else { "file" },
        outcome.elapsed,
        problems.join("; "),
        excerpt(&stderr)
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
fn malformed_inputs_are_refused_with_a_location() {
    let cases = cases();
    assert!(cases.len() >= 34, "the table holds {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");

    // Run the cases on a few threads: the huge ones take a while in a debug build.
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = cases.get(i) else { break };
                if let Some(f) = check(c) {
                    failures.lock().unwrap().push((i, f));
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort_by_key(|(i, _)| *i);
    assert!(
        failures.is_empty(),
        "{} of {} malformed inputs were not reported as expected:\n\n{}",
        failures.len(),
        cases.len(),
        failures
            .into_iter()
            .map(|(_, f)| f)
            .collect::<Vec<_>>()
            .join("\n")
    );
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
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
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
    let (code, stdout, _) = run(&[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("9 invariants: 9 hold"), "{stdout}");
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
    assert_eq!(violated, ["proxy-not-recaptured"]);
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
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["trace".into()], "--dst"),
        (
            vec![
                "trace".into(),
                "--dst".into(),
                "10.1.0.999".into(),
                "--dport".into(),
                "80".into(),
            ],
            "invalid",
        ),
        (
            vec![
                "trace".into(),
                "--dst".into(),
                "10.1.0.99".into(),
                "--dport".into(),
                "70000".into(),
            ],
            "70000",
        ),
        (
            vec![
                "trace".into(),
                "--dst".into(),
                "10.1.0.99".into(),
                "--dport".into(),
                "80".into(),
                "--src".into(),
                "::1".into(),
            ],
            "different families",
        ),
        (
            vec![
                "trace".into(),
                "--dst".into(),
                "10.1.0.99".into(),
                "--dport".into(),
                "80".into(),
                "--profile".into(),
                profile.display().to_string(),
            ],
            "proxy_uid",
        ),
        (
            vec![
                "scenarios".into(),
                "--profile".into(),
                "/nonexistent/profile.toml".into(),
            ],
            "cannot read profile",
        ),
        (
            vec!["scenarios".into(), "/nonexistent/rules".into()],
            "cannot read",
        ),
        (vec!["frobnicate".into()], "unrecognized subcommand"),
        (
            vec!["kernel".into(), "--pod-ip".into(), "10.0.0.1".into()],
            "cannot change it",
        ),
        (
            vec!["kernel".into(), "--flows".into(), "many".into()],
            "invalid value",
        ),
    ];
    let mut failures = Vec::new();
    for (args, want) in &cases {
        let out = Command::new(BIN)
            .args(args)
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
        let out = run(&["parse", "-"], Some(input.as_bytes()), name);
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

// ----- hostile inputs, one file per case (tests/bad_input/*.toml) -----

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
    /// `prefix`, then `unit` repeated up to `bytes` bytes in all.
    Repeat {
        prefix: String,
        unit: String,
        bytes: u64,
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
    #[serde(default)]
    stdout_contains: Vec<String>,
    max_seconds: f64,
    max_rss_mib: u64,
}

/// The input of a case: bytes in memory, or a stream made on the fly.
enum Input {
    Bytes(Vec<u8>),
    Repeat {
        prefix: Vec<u8>,
        unit: Vec<u8>,
        bytes: u64,
    },
}

impl Input {
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
                bytes,
            } => {
                let mut written = 0u64;
                if w.write_all(prefix).is_err() {
                    return 0;
                }
                written += prefix.len() as u64;
                let block: Vec<u8> = unit.iter().copied().cycle().take(1 << 16).collect();
                while written < *bytes {
                    let n = usize::try_from((*bytes - written).min(block.len() as u64)).unwrap();
                    match w.write(&block[..n]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => written += k as u64,
                    }
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

fn case_input(c: &CaseFile, root: &std::path::Path) -> Input {
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
            }),
        ) => Input::Repeat {
            prefix: prefix.as_bytes().to_vec(),
            unit: unit.as_bytes().to_vec(),
            bytes: *bytes,
        },
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

/// Every case file in `tests/bad_input/`, each subcommand it names, with its exit code, stderr
/// prefix, stdout, time and memory bounds. The bounds are for the debug build `cargo test`
/// makes; a release build runs every case in a fraction of them. A table of what each run took
/// is printed (`--nocapture` shows it).
#[test]
fn hostile_inputs_one_file_per_case() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{} case files in {}",
        files.len(),
        dir.display()
    );

    let mut failures = Vec::new();
    let mut table = Vec::new();
    // One case at a time: the bounds are on time and memory, and the big cases would skew each
    // other's clocks.
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let case: CaseFile =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let input = case_input(&case, &root);
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
        let input_arg = if case.stdin {
            "-".to_string()
        } else {
            source.clone()
        };
        for spec in &case.run {
            let mut args = spec.args.clone();
            args.insert(1, input_arg.clone());
            let limit = Duration::from_secs_f64(spec.max_seconds);
            // Killed at twice the bound, so that a run over it is still measured.
            let m = run_measured(
                &args,
                case.stdin.then_some(&input),
                &name,
                limit * 2 + Duration::from_secs(5),
            );
            let stderr = String::from_utf8_lossy(&m.stderr);
            let stdout = String::from_utf8_lossy(&m.stdout);
            let first = stderr.lines().next().unwrap_or("");
            let mut problems = Vec::new();
            if m.code != Some(spec.exit) {
                problems.push(format!("exit {:?}, expected {}", m.code, spec.exit));
            }
            if stderr.contains("panicked") || stderr.contains("overflow") {
                problems.push("stderr says it panicked or overflowed".to_string());
            }
            match &spec.stderr_prefix {
                Some(p) => {
                    let want = p.replace("{source}", &source);
                    if !first.starts_with(&want) {
                        problems.push(format!("first stderr line does not start with `{want}`"));
                    }
                }
                None if spec.exit == 2 => problems.push("exit 2 needs a stderr_prefix".into()),
                None => {}
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
            if m.max_rss_kib > spec.max_rss_mib * 1024 {
                problems.push(format!(
                    "peak RSS {rss_mib:.0} MiB, bound {} MiB",
                    spec.max_rss_mib
                ));
            }
            if let Input::Repeat { bytes, .. } = &input {
                // The child must stop reading long before the end.
                if case.stdin && m.stdin_written >= *bytes {
                    problems.push(format!(
                        "the child read all {bytes} bytes of its stdin; it must stop at the line limit"
                    ));
                }
            }
            table.push(format!(
                "{name:40} {:44} exit {:>4} {:>7.2} s {:>6.0} MiB{}",
                spec.args.join(" "),
                m.code.map_or("none".to_string(), |c| c.to_string()),
                m.elapsed.as_secs_f64(),
                rss_mib,
                if case.stdin && matches!(input, Input::Repeat { .. }) {
                    format!("  (stdin: {} MiB written)", m.stdin_written >> 20)
                } else {
                    String::new()
                }
            ));
            if !problems.is_empty() {
                failures.push(format!(
                    "--- {name}: sidecar-verify {}: {}\nstdout:\n{}stderr:\n{}",
                    args.join(" "),
                    problems.join("; "),
                    excerpt(&stdout),
                    excerpt(&stderr)
                ));
            }
        }
    }
    println!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "{} run(s) of the case files failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
