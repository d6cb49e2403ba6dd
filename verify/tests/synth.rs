//! `synth kube-proxy` (sidecar_model::synth::kube_proxy): the generated nat table parses and
//! prints back byte for byte, holds the chains and rules its formula says, is what the kernel
//! loads and `iptables-save` prints (in a scratch network namespace, `kp-…`, deleted after),
//! and `trace` follows a connection to a service's cluster IP (or a node port) to a DNAT to one
//! of that service's endpoints. Also the parser on the same text in the command form, and a
//! bad line deep in a node-sized file.

#![cfg(test)]

use std::process::{Command, Output, Stdio};

use sidecar_model::synth::kube_proxy::{counts, generate, services, Mesh, Proto, Spec};
use sidecar_model::{parse, print_ruleset, TableKind};
use sidecar_verify::netns::on_path;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_sidecar-verify");

fn spec(services: usize, endpoints: usize, nodeport_every: usize) -> Spec {
    Spec {
        services,
        endpoints,
        nodeport_every,
        mesh: None,
        seed: 7,
    }
}

/// The specs the tests go over: sizes, one endpoint, many, no NodePort, all NodePort, and every
/// mesh.
fn specs() -> Vec<Spec> {
    let mut v = vec![
        spec(1, 1, 0),
        spec(20, 3, 10),
        spec(40, 1, 1),
        spec(17, 7, 0),
        spec(300, 2, 3),
    ];
    for m in Mesh::ALL {
        v.push(Spec {
            mesh: Some(m),
            ..spec(25, 3, 4)
        });
    }
    v
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn the_text_parses_and_prints_back_byte_for_byte() {
    for s in specs() {
        let text = generate(&s).unwrap();
        let parsed = parse("synth", text.as_bytes()).unwrap();
        assert_eq!(print_ruleset(&parsed.ruleset), text, "{s:?}");
    }
}

/// The nat table's chains and rules, as the formula of `counts` says: 10 fixed chains + N + N·K
/// + E, 8 fixed rules + N·(2 + 3K) + 3E; with a mesh, plus the mesh's own nat chains and rules.
#[test]
fn chains_and_rules_are_as_the_formula_says() {
    for s in specs() {
        let rs = parse("synth", generate(&s).unwrap().as_bytes())
            .unwrap()
            .ruleset;
        let nat = rs.ipv4.iter().find(|t| t.kind == TableKind::Nat).unwrap();
        let rules: usize = nat.chains.iter().map(|c| c.rules.len()).sum();
        let mut want = counts(&s);
        if let Some(m) = s.mesh {
            let mesh = parse("mesh", m.rules().as_bytes()).unwrap().ruleset;
            let mnat = mesh.ipv4.iter().find(|t| t.kind == TableKind::Nat).unwrap();
            want.chains += mnat.chains.len() - 4;
            want.rules += mnat.chains.iter().map(|c| c.rules.len()).sum::<usize>();
        }
        assert_eq!(
            (nat.chains.len(), rules),
            (want.chains, want.rules),
            "{s:?}"
        );
    }
    // The figure the issue names: 10,000 services of 3 endpoints, a NodePort every 10th, is
    // about 150,000 lines.
    let big = spec(10_000, 3, 10);
    let c = counts(&big);
    assert_eq!((c.chains, c.rules), (41_010, 113_008));
}

/// With a mesh, its jumps come first in the built-in chains, and kube-proxy's after.
#[test]
fn the_mesh_jumps_first() {
    let text = generate(&Spec {
        mesh: Some(Mesh::Istio),
        ..spec(5, 2, 0)
    })
    .unwrap();
    let output: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("-A OUTPUT"))
        .collect();
    assert_eq!(
        output,
        [
            "-A OUTPUT -p tcp -j ISTIO_OUTPUT",
            "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        ]
    );
}

#[test]
fn the_command_writes_the_same_text_for_a_seed_and_refuses_what_it_cannot() {
    let a = run(&["synth", "kube-proxy", "--services", "30", "--seed", "3"]);
    let b = run(&["synth", "kube-proxy", "--services", "30", "--seed", "3"]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout);
    let lib = generate(&Spec {
        services: 30,
        seed: 3,
        ..Spec::default()
    })
    .unwrap();
    assert_eq!(String::from_utf8(a.stdout).unwrap(), lib);

    let nft = run(&["synth", "kube-proxy", "--services", "3", "--backend", "nft"]);
    assert_eq!(nft.status.code(), Some(2));
    let err = String::from_utf8_lossy(&nft.stderr);
    assert!(err.contains("`--backend nft` is not built yet"), "{err}");
    assert!(nft.stdout.is_empty());

    let zero = run(&["synth", "kube-proxy", "--services", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&zero.stderr)
        .contains("--services must be from 1 to 200000, not 0"));
    let ports = run(&[
        "synth",
        "kube-proxy",
        "--services",
        "3000",
        "--nodeport-every",
        "1",
    ]);
    assert_eq!(ports.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ports.stderr).contains("do not fit in the node port range"));
}

/// Where `trace --json` says the journey's last hop was translated to.
fn traced_dnat(rules: &std::path::Path, args: &[&str]) -> (String, Option<String>) {
    let mut all = vec!["trace", rules.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert_eq!(out.status.code(), Some(0), "{all:?}: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcome = v["outcome"].as_str().unwrap().to_string();
    let hops = v["hops"].as_array().unwrap();
    let dnat = hops.last().unwrap()["verdict"]["dnat"]
        .as_str()
        .map(str::to_string);
    (outcome, dnat)
}

/// A connection from the pod to a service's cluster IP and port is DNATed to one of that
/// service's endpoints and leaves the pod (the model takes `-m statistic` as not matching, so
/// it is the last endpoint, the unconditional rule); the same through Istio's sidecar (the
/// proxy's re-connection is the one DNATed); a node port on the pod's (the node's) address, which
/// `-m addrtype --dst-type LOCAL` recognises, to the same endpoints.
#[test]
fn trace_reaches_an_endpoint_of_the_service() {
    let dir = std::env::temp_dir().join(format!("kp-synth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for mesh in [None, Some(Mesh::Istio)] {
        let s = Spec {
            mesh,
            ..spec(40, 4, 3)
        };
        let path = dir.join(format!("kube-{}.rules", mesh.map_or("none", Mesh::name)));
        std::fs::write(&path, generate(&s).unwrap()).unwrap();
        let svcs = services(&s).unwrap();
        let tcp = svcs.iter().find(|v| v.proto == Proto::Tcp).unwrap();
        let udp = svcs.iter().find(|v| v.proto == Proto::Udp).unwrap();
        for svc in [tcp, udp] {
            let (ip, port) = (svc.cluster_ip.to_string(), svc.port.to_string());
            let mut args = vec!["--dst", &ip, "--dport", &port];
            if svc.proto == Proto::Udp {
                args.extend(["--proto", "udp"]);
            }
            let (outcome, dnat) = traced_dnat(&path, &args);
            let endpoints: Vec<String> = svc.endpoints.iter().map(|e| e.to_string()).collect();
            assert_eq!(outcome, "remote", "{mesh:?} {}", svc.port_ref());
            let dnat = dnat.unwrap_or_default();
            assert!(
                endpoints.contains(&dnat),
                "{mesh:?} {}: DNAT to `{dnat}`, not one of {endpoints:?}",
                svc.port_ref()
            );
            assert_eq!(&dnat, endpoints.last().unwrap());
        }
        let np = svcs
            .iter()
            .find(|v| v.node_port.is_some() && v.proto == Proto::Tcp)
            .unwrap();
        let port = np.node_port.unwrap().to_string();
        let (outcome, dnat) = traced_dnat(&path, &["--dst", "10.1.0.5", "--dport", &port]);
        assert_eq!(outcome, "remote", "{mesh:?} node port {port}");
        assert_eq!(dnat, np.endpoints.last().map(|e| e.to_string()));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same ruleset written as one `iptables -t nat …` command per line (that front end reads
/// each line at once, never a block) parses to the same ruleset as the save text.
#[test]
fn the_command_form_of_the_same_rules_parses_the_same() {
    let text = generate(&spec(400, 3, 5)).unwrap();
    let mut commands = String::new();
    for line in text.lines() {
        if let Some(decl) = line.strip_prefix(':') {
            let name = decl.split(' ').next().unwrap();
            if decl.ends_with("- [0:0]") {
                commands.push_str(&format!("iptables -t nat -N {name}\n"));
            }
        } else if line.starts_with("-A ") {
            commands.push_str(&format!("iptables -t nat {line}\n"));
        }
    }
    let saved = parse("save", text.as_bytes()).unwrap().ruleset;
    let cmds = parse("commands", commands.as_bytes()).unwrap().ruleset;
    assert_eq!(saved, cmds);
}

/// A bad line deep in a node-sized file is refused with its line and column, exit 2, no panic.
#[test]
fn a_bad_line_deep_in_a_large_file_is_located() {
    let text = generate(&spec(2000, 3, 10)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = lines.len() - 500;
    let bad = lines[at].replace(" -j KUBE-", " --dportt 80 -j KUBE-");
    assert_ne!(bad, lines[at]);
    lines[at] = bad;
    let column = lines[at].find("--dportt").unwrap() + 1;
    let path = std::env::temp_dir().join(format!("kp-bad-{}.rules", std::process::id()));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = run(&["parse", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:{}:{column}: unknown option `--dportt`",
        path.display(),
        at + 1
    );
    assert!(err.contains(&want), "{err}\nwanted {want}");
    assert!(!err.contains("panicked"));
}

/// Why the kernel cannot be asked here, when it cannot.
fn no_kernel() -> Option<String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Some("not running as root".into());
    }
    ["ip", "iptables-restore", "iptables-save"]
        .into_iter()
        .find(|t| !on_path(t))
        .map(|t| format!("`{t}` not found (install iproute2 and iptables)"))
}

/// A scratch namespace `kp-synth-PID-N`, deleted when dropped.
struct Scratch(String);

impl Scratch {
    fn new(n: usize) -> Result<Scratch, String> {
        let name = format!("kp-synth-{}-{n}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Scratch(name))
    }

    fn exec(&self, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write as _;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin);
        child.wait_with_output().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// `iptables-restore --test` accepts every generated text, and after `iptables-restore`
/// `iptables-save` prints it back: the text is what a node running kube-proxy (and a mesh)
/// holds, word for word.
#[test]
fn the_kernel_loads_it_and_saves_it_back() {
    if let Some(why) = no_kernel() {
        println!("skipping the_kernel_loads_it_and_saves_it_back: {why}");
        return;
    }
    for (n, s) in specs().into_iter().enumerate() {
        let ns = match Scratch::new(n) {
            Ok(ns) => ns,
            Err(e) => {
                println!("skipping the_kernel_loads_it_and_saves_it_back: cannot create a network namespace: {e}");
                return;
            }
        };
        let text = generate(&s).unwrap();
        let test = ns.exec(&["iptables-restore", "--test"], text.as_bytes());
        assert!(
            test.status.success(),
            "{s:?}: iptables-restore --test: {}",
            String::from_utf8_lossy(&test.stderr)
        );
        let load = ns.exec(&["iptables-restore"], text.as_bytes());
        assert!(load.status.success(), "{s:?}: {load:?}");
        let saved = ns.exec(&["iptables-save"], b"");
        let saved: String = String::from_utf8_lossy(&saved.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let ours: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(saved, ours, "{s:?}");
    }
}
