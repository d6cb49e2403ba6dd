//! Every family the input holds tables for is checked, without any `--pod-ip`: the command line
//! on our own dual-stack rulesets (corpus/rulesets/istio-dual-stack.rules, its IPv6 half
//! istio-ipv6-only.rules as `ip6tables-save` printed it, and corpus/broken/ipv6-not-captured.rules
//! with the IPv6 capture removed). Before `Pod::for_rulesets`, the diff said "0 class(es)", exit
//! 0, the check of the uncaptured IPv6 table passed, and `ip6tables-save | check -` reported IPv4
//! witnesses and "0 live" rules.

#![cfg(test)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use sidecar_verify::corpus::{istio_dir, workspace};

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sidecar-verify"))
        .args(args)
        .current_dir(workspace())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const DUAL: &str = "corpus/rulesets/istio-dual-stack.rules";
const NO_V6_CAPTURE: &str = "corpus/broken/ipv6-not-captured.rules";
const V6_ONLY: &str = "corpus/rulesets/istio-ipv6-only.rules";

#[test]
fn diff_sees_the_ipv6_capture_removed() {
    let o = run(&["diff", DUAL, NO_V6_CAPTURE], None);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.starts_with("pod 10.1.0.5, fd00::5 (10.1.0.5, fd00::5 by default"),
        "{out}"
    );
    let json = run(&["diff", "--format", "json", DUAL, NO_V6_CAPTURE], None);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let changes = v["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    // Every change is IPv6: the IPv4 tables are the same on both sides.
    for c in changes {
        let dst = c["witness"]["dst"].as_str().unwrap();
        assert!(dst.contains(':'), "an IPv4 change: {c}");
    }
    // The other way round too: the family captured on one side only.
    assert_eq!(
        run(&["diff", NO_V6_CAPTURE, DUAL], None).status.code(),
        Some(1)
    );
    // And nothing changes against itself.
    assert_eq!(run(&["diff", DUAL, DUAL], None).status.code(), Some(0));
}

/// The ids of the invariants a `check --format json` run reports violated.
fn violated_ids(o: &std::process::Output) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "violated")
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn check_fails_a_ruleset_whose_ipv6_table_captures_nothing() {
    let o = run(&["check", "--format", "json", NO_V6_CAPTURE], None);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pod_ips"], serde_json::json!(["10.1.0.5", "fd00::5"]));
    // Every invariant of one connection that fails, fails in IPv6; identity-symmetry fails as
    // on every ruleset with Istio's rule order (uid rules before gid rules), and
    // dual-stack-parity pairs an IPv4 connection with its uncaptured IPv6 counterpart.
    let violated: Vec<&str> = v["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "violated")
        .map(|i| {
            let id = i["id"].as_str().unwrap();
            if !matches!(id, "identity-symmetry" | "dual-stack-parity") {
                assert_eq!(i["family"], "ipv6", "{i}");
            }
            id
        })
        .collect();
    assert_eq!(
        violated,
        [
            "inbound-captured",
            "outbound-captured",
            "single-pass",
            "pod-local",
            "identity-symmetry",
            "dual-stack-parity"
        ]
    );
    let text = stdout(&run(&["check", NO_V6_CAPTURE], None));
    assert!(
        text.contains("; pod 10.1.0.5, fd00::5 (10.1.0.5, fd00::5 by default: no --pod-ip of their families);"),
        "{text}"
    );
    // The same rules both families hold fail only identity-symmetry (Istio's rule order).
    let o = run(&["check", "--format", "json", DUAL], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(violated_ids(&o), ["identity-symmetry"]);
}

#[test]
fn ip6tables_save_output_alone_is_checked_as_ipv6() {
    let saved = std::fs::read_to_string(workspace().join(V6_ONLY)).unwrap();
    let bare: String = saved
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    for input in [saved.as_str(), bare.as_str()] {
        let o = run(&["check", "--format", "json", "-"], Some(input));
        // Only identity-symmetry fails (Istio's rule order), as on the IPv4 rules.
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(violated_ids(&o), ["identity-symmetry"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["pod_ips"], serde_json::json!(["fd00::5"]));
        let rules = v["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 19);
        assert!(rules.iter().all(|r| r["family"] == "ipv6"));
        let live = rules.iter().filter(|r| r["status"] == "live").count();
        assert!(live >= 15, "{live} live rules");
    }
    // Its IPv6 table captures; take the capture out and the IPv6 witnesses come.
    let uncaptured = saved.replace("-A OUTPUT -p tcp -j ISTIO_OUTPUT\n", "");
    let o = run(&["check", "-"], Some(&uncaptured));
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("; pod fd00::5 (fd00::5 by default"), "{out}");
    assert!(out.contains("witness: tcp [fd00::5]:40000 -> "), "{out}");
    assert!(!out.contains("10.1.0."), "{out}");
}

#[test]
fn trace_refuses_a_destination_of_a_family_without_a_pod_address() {
    // The built-in classic ruleset is IPv4 only.
    let o = run(&["trace", "--dst", "fd00::99", "--dport", "80"], None);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the pod has no IPv6 address") && err.contains("`--pod-ip fd00::5`"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    // Given the address, or a ruleset with IPv6 tables, it traces from the pod's IPv6 address.
    for args in [
        &[
            "trace", "--dst", "fd00::99", "--dport", "80", "--pod-ip", "fd00::5", "--json",
        ][..],
        &[
            "trace", DUAL, "--dst", "fd00::99", "--dport", "80", "--json",
        ][..],
    ] {
        let o = run(args, None);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["hops"][0]["packet"]["src"], "fd00::5", "{args:?}");
    }
    // An IPv6-only ruleset has no IPv4 pod address.
    let o = run(
        &["trace", V6_ONLY, "--dst", "10.1.0.99", "--dport", "80"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`--pod-ip 10.1.0.5`"));
}

#[test]
fn an_ipv4_only_ruleset_keeps_its_pod() {
    let out = stdout(&run(&["check"], None));
    assert!(
        out.contains("; pod 10.1.0.5; routable connections"),
        "{out}"
    );
    // An IPv6 address given adds IPv6 and keeps IPv4 (the ruleset holds IPv4 tables).
    let o = run(&["check", "--format", "json", "--pod-ip", "fd00::5"], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pod_ips"], serde_json::json!(["fd00::5", "10.1.0.5"]));
}

#[test]
fn scenarios_run_in_every_family_of_the_ruleset() {
    let v4: serde_json::Value =
        serde_json::from_slice(&run(&["scenarios", "--json"], None).stdout).unwrap();
    assert_eq!(v4.as_array().unwrap().len(), 10);
    let both: serde_json::Value =
        serde_json::from_slice(&run(&["scenarios", "--json", DUAL], None).stdout).unwrap();
    let both = both.as_array().unwrap();
    assert_eq!(both.len(), 20);
    // The IPv6 counterparts agree with the article where the IPv4 ones do.
    for (a, b) in both.iter().take(10).zip(both.iter().skip(10)) {
        assert_eq!(b["family"], "ipv6");
        assert_eq!(a["id"], b["id"]);
        assert_eq!(a["agrees"], b["agrees"], "{}", b["id"]);
    }
}

/// One of Istio's own dual-stack files, checked without --pod-ip: its ip6tables rules are in the
/// reachability and the invariants.
#[test]
fn an_istio_dual_stack_file_is_checked_in_both_families() {
    let Some(dir) = istio_dir() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let file =
        dir.join("tools/istio-iptables/pkg/capture/testdata/ipv6-empty-inbound-ports.golden");
    let o = run(&["check", "--format", "json", file.to_str().unwrap()], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pod_ips"], serde_json::json!(["10.1.0.5", "fd00::5"]));
    let v6 = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["family"] == "ipv6")
        .count();
    assert!(v6 >= 10, "{v6} IPv6 rules");
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Headerless input: IPv6 when its addresses are, `--family` says it when they say nothing, an
/// input of both families without a marker is refused where the second family starts, a
/// byte-order mark is skipped.
#[test]
fn headerless_input_families_and_the_byte_order_mark() {
    // No address at all: IPv4 unless `--family ipv6` says otherwise.
    let plain = "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p tcp -j RETURN\nCOMMIT\n";
    let o = run(&["parse", "-"], Some(plain));
    assert!(
        stdout(&o).starts_with("# Generated by iptables-save"),
        "{}",
        stdout(&o)
    );
    let o = run(&["parse", "--family", "ipv6", "-"], Some(plain));
    assert!(
        stdout(&o).starts_with("# Generated by ip6tables-save"),
        "{}",
        stdout(&o)
    );
    // Both families, no marker: refused at the first address of the second family.
    let mixed =
        "*nat\n-A OUTPUT -d ::6/128 -j RETURN\n-A OUTPUT -d 10.0.0.1/32 -j RETURN\nCOMMIT\n";
    for cmd in ["parse", "check"] {
        let o = run(&[cmd, "-"], Some(mixed));
        assert_eq!(o.status.code(), Some(2));
        assert!(
            stderr(&o).starts_with("error: <stdin>:3:14: the input mixes IPv4 and IPv6 addresses"),
            "{}",
            stderr(&o)
        );
    }
    // `--family ipv6` takes the guess's place: the IPv4 rule is then the error.
    let o = run(&["parse", "--family", "ipv6", "-"], Some(mixed));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(":3:14: IPv4 address"), "{}", stderr(&o));
    // A byte-order mark (as Windows editors save) is skipped: same canonical text.
    let with_bom = format!("\u{feff}{plain}");
    let (a, b) = (
        run(&["parse", "-"], Some(&with_bom)),
        run(&["parse", "-"], Some(plain)),
    );
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
}

/// An input with no table (an empty file, or the header `iptables-nft-save` prints in a
/// namespace iptables-legacy loaded) is bad input, exit 2, naming the dump commands meant;
/// never an empty ruleset whose invariants are then reported.
#[test]
fn an_input_without_a_table_is_refused_naming_the_dump_commands() {
    for text in [
        "",
        "\n",
        "# Generated by iptables-nft-save v1.8.9 on Tue Dec  1 05:00:00 2026\n# Completed\n",
    ] {
        for args in [
            &["check", "-"][..],
            &["parse", "-"],
            &["scenarios", "-"],
            &["diff", DUAL, "-"],
        ] {
            let o = run(args, Some(text));
            assert_eq!(o.status.code(), Some(2), "{args:?} on {text:?}");
            let e = stderr(&o);
            assert!(e.starts_with("error: `<stdin>` holds no table"), "{e}");
            for tool in [
                "iptables-legacy-save",
                "iptables-nft-save",
                "nft list ruleset",
            ] {
                assert!(e.contains(tool), "{e}");
            }
            assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        }
    }
    // A table without rules is a ruleset (nothing captured), not an empty input.
    let o = run(
        &["parse", "-"],
        Some("*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
