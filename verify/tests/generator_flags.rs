//! `--istio-args`, `--annotation`, `--istio-cni`, `--kuma-args` and `--linkerd-args` at the
//! command line: a profile from flags checks as the same profile written as a file, bad flags
//! exit 2 naming them, and the options that contradict each other are refused.

#![cfg(test)]

use std::process::Command;

use sidecar_verify::corpus::workspace;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sidecar-verify"))
        .current_dir(workspace())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn flags_check_as_the_profile_file_they_stand_for() {
    // The injector's default istio-iptables flags, and the same values written as a profile
    // (independently: no -d means no metrics port, every port but 15008 and the -d ones
    // captured inbound, every destination outbound).
    let dir = std::env::temp_dir().join(format!("generator-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("injector.toml");
    std::fs::write(
        &file,
        "exclude_inbound_ports = [15008, 15090, 15021, 15020]\nmetrics_ports = [15090, 15021, 15020]\n",
    )
    .unwrap();
    let from_file = run(&[
        "check",
        "--format",
        "json",
        "--profile",
        file.to_str().unwrap(),
    ]);
    let from_flags = run(&[
        "check",
        "--format",
        "json",
        "--istio-args",
        "istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020",
    ]);
    let from_annotations = run(&[
        "check",
        "--format",
        "json",
        "--annotation",
        "sidecar.istio.io/status={}",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(from_file.0, 1, "{}", from_file.2);
    assert_eq!(from_flags, from_file);
    assert_eq!(from_annotations, from_file);
}

#[test]
fn the_builtin_kuma_and_linkerd_profiles_are_their_generators_flags() {
    let kuma = run(&["check", "corpus/rulesets/kuma.rules", "--format", "json"]);
    let kuma_profile = run(&[
        "check",
        "corpus/rulesets/kuma.rules",
        "--format",
        "json",
        "--profile",
        "kuma",
    ]);
    let kuma_flags = run(&[
        "check",
        "corpus/rulesets/kuma.rules",
        "--format",
        "json",
        "--kuma-args",
        "kumactl install transparent-proxy --kuma-dp-uid 5678 --redirect-all-dns-traffic",
    ]);
    assert_eq!(kuma_profile.0, 0, "{}", kuma_profile.1);
    assert_eq!(kuma_flags, kuma_profile);
    assert_ne!(kuma.1, kuma_profile.1, "the istio profile is another");
    let linkerd_profile = run(&[
        "check",
        "corpus/rulesets/linkerd.rules",
        "--format",
        "json",
        "--profile",
        "linkerd",
    ]);
    let linkerd_flags = run(&[
        "check",
        "corpus/rulesets/linkerd.rules",
        "--format",
        "json",
        "--linkerd-args",
        "-p 4143 -o 4140 -u 2102 --inbound-ports-to-ignore 4190,4191,4567,4568 --outbound-ports-to-ignore 4567,4568",
    ]);
    assert_eq!(linkerd_profile.0, 0, "{}", linkerd_profile.1);
    assert_eq!(linkerd_flags, linkerd_profile);
    // Linkerd's flags without the uid rule's proxy: its connections are captured, and check
    // says so (exit 1), whatever the rules.
    let (code, _, _) = run(&[
        "check",
        "corpus/rulesets/linkerd.rules",
        "--linkerd-args",
        "-p 4143 -o 4140 -u 2103",
    ]);
    assert_eq!(code, 1);
}

#[test]
fn bad_flags_exit_2_naming_them() {
    let cases: &[(&[&str], &str)] = &[
        (&["--istio-args", "-p x"], "error: `-p`: `x` is not a port (1-65535)"),
        (
            &["--istio-args=--tproxy-mark 1"],
            "error: unknown istio-iptables flag `--tproxy-mark`",
        ),
        (
            &["--annotation", "traffic.sidecar.istio.io/includeInboundPorts=80,x"],
            "error: `traffic.sidecar.istio.io/includeInboundPorts`: `x` is not a port (1-65535)",
        ),
        (&["--annotation", "nokey"], "error: `--annotation nokey`: expected KEY=VALUE"),
        (
            &["--kuma-args", "--kuma-cp-ip 10.0.0.1"],
            "error: unknown kumactl install transparent-proxy flag `--kuma-cp-ip`",
        ),
        (
            &["--linkerd-args", "-p 4143"],
            "error: proxy-init needs `--outgoing-proxy-port` (it refuses to run without a valid port)",
        ),
        (
            &["--profile", "ambient", "--istio-args", "-p 15001"],
            "error: `--istio-args` describes istio's rules; `--profile ambient` is another mesh's",
        ),
        (
            &["--profile", "linkerd", "--kuma-args", ""],
            "error: `--kuma-args` describes kuma's rules; `--profile linkerd` is another mesh's",
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["check"];
        a.extend_from_slice(args);
        let (code, out, err) = run(&a);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.starts_with(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    for conflict in [
        &["check", "--istio-args", "", "--kuma-args", ""][..],
        &["check", "--annotation", "a=b", "--linkerd-args", ""][..],
        &["check", "--kuma-args", "", "--linkerd-args", ""][..],
    ] {
        let (code, _, err) = run(conflict);
        assert_eq!(code, 2, "{conflict:?}");
        assert!(err.contains("cannot be used with"), "{err}");
    }
}
