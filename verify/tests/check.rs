//! `check`: the invariant suite over every ruleset under `corpus/`, reachability on the classic
//! ruleset, and every witness replayed through `trace` and (when the machine can) the kernel.
//!
//! Each `corpus/**/NAME.rules` may have `NAME.toml` beside it:
//! ```toml
//! violated = ["proxy-not-recaptured"]  # exactly these are violated, every other one holds
//! vacuous = ["metrics-bypass"]          # exactly these are vacuous (nothing to check)
//! sidecar = false                      # not a sidecar ruleset: only run check to completion
//! pod_ips = ["10.1.0.5", "fd00::5"]    # the pod (default: 10.1.0.5 and fd00::5 for each family
//!                                      # the ruleset holds tables of, as `check` without --pod-ip)
//! [profile]                            # overrides of the istio profile
//! exclude_inbound_ports = [15008]
//! ```
//! Without one, every invariant must hold with the istio profile. A user who drops a ruleset
//! into `corpus/` gets a failing test naming the invariant, with the witness and its journey.

#![cfg(test)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use sidecar_model::pod::{Connection, Pod, Profile, Simulator};
use sidecar_model::{parse, print_ruleset, Ruleset, DEFAULT_RULESET};
use sidecar_verify::check::{check, replay_args, Options, Report, RuleStatus, Status};
use sidecar_verify::corpus::workspace;
use sidecar_verify::report::text::check as text;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[serde(default)]
    violated: Vec<String>,
    #[serde(default)]
    vacuous: Vec<String>,
    #[serde(default = "yes")]
    sidecar: bool,
    #[serde(default)]
    pod_ips: Vec<IpAddr>,
    #[serde(default)]
    profile: Option<toml::Value>,
    /// For a ruleset that is no sidecar's: the invariants whose answer is honestly unknown.
    #[serde(default)]
    unknown: Vec<String>,
}

fn yes() -> bool {
    true
}

fn rules_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rules_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rules") {
            out.push(p);
        }
    }
}

struct Case {
    path: PathBuf,
    rs: Ruleset,
    pod: Pod,
    profile: Profile,
    expect: Expect,
}

fn load(path: &Path) -> Case {
    let bytes = std::fs::read(path).unwrap();
    let rs = parse(&path.display().to_string(), &bytes).unwrap().ruleset;
    let toml_path = path.with_extension("toml");
    let expect: Expect = if toml_path.exists() {
        toml::from_str(&std::fs::read_to_string(&toml_path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", toml_path.display()))
    } else {
        Expect::default_sidecar()
    };
    let profile = match &expect.profile {
        Some(v) => Profile::from_toml(&toml::to_string(v).unwrap()).unwrap(),
        None => Profile::istio(),
    };
    Case {
        path: path.to_path_buf(),
        // As the command builds it: every family the ruleset holds, at its default address when
        // `pod_ips` gives none of that family.
        pod: Pod::for_rulesets(&expect.pod_ips, &[&rs]),
        rs,
        profile,
        expect,
    }
}

impl Expect {
    fn default_sidecar() -> Expect {
        Expect {
            sidecar: true,
            ..Expect::default()
        }
    }
}

fn run(c: &Case) -> Report {
    let canonical = print_ruleset(&c.rs);
    check(&c.rs, &canonical, &c.pod, &c.profile, &Options::default())
        .unwrap_or_else(|e| panic!("{}: {e}", c.path.display()))
}

fn corpus_cases() -> Vec<Case> {
    let mut files = Vec::new();
    rules_files(&workspace().join("corpus"), &mut files);
    assert!(files.len() >= 10, "corpus/ holds {} rulesets", files.len());
    files.iter().map(|p| load(p)).collect()
}

#[test]
fn every_corpus_ruleset_meets_its_expected_invariants() {
    let mut failures = Vec::new();
    for c in corpus_cases() {
        let report = run(&c);
        let unknown: Vec<&str> = report
            .invariants
            .iter()
            .filter(|i| i.status == Status::Unknown)
            .map(|i| i.id)
            .collect();
        if !c.expect.sidecar {
            if unknown
                != c.expect
                    .unknown
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
            {
                failures.push(format!("{}: unknown: {unknown:?}", c.path.display()));
            }
            continue;
        }
        let got: BTreeSet<&str> = report
            .invariants
            .iter()
            .filter(|i| !i.status.passes())
            .map(|i| i.id)
            .collect();
        let want: BTreeSet<&str> = c.expect.violated.iter().map(String::as_str).collect();
        let got_vacuous: BTreeSet<&str> = report
            .invariants
            .iter()
            .filter(|i| i.status == Status::Vacuous)
            .map(|i| i.id)
            .collect();
        let want_vacuous: BTreeSet<&str> = c.expect.vacuous.iter().map(String::as_str).collect();
        if got != want || got_vacuous != want_vacuous {
            failures.push(format!(
                "{}: expected violated {want:?} and vacuous {want_vacuous:?}, got {got:?} and {got_vacuous:?}\n{}",
                c.path.display(),
                text(&report, &c.rs, &c.path.display().to_string(), &c.pod)
            ));
        }
        for id in &want {
            let inv = report.invariants.iter().find(|i| i.id == *id);
            assert!(
                inv.is_some_and(|i| i.witness.is_some() && i.journey.is_some()),
                "{}: `{id}` has no witness",
                c.path.display()
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn classic_reachability_finds_the_dead_and_the_unroutable_rules() {
    let rs = parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    let canonical = print_ruleset(&rs);
    let r = check(
        &rs,
        &canonical,
        &Pod::default(),
        &Profile::istio(),
        &Options::default(),
    )
    .unwrap();
    // Every invariant but identity-symmetry (a real asymmetry: the gid rules 5-7 come after the
    // uid rules 2-4, the shadowed rules found below).
    // dns (no DNS capture) and dual-stack-parity (IPv4 only) have nothing to check.
    let bad: Vec<(&str, Status)> = r
        .invariants
        .iter()
        .filter(|i| i.status != Status::Holds)
        .map(|i| (i.id, i.status))
        .collect();
    assert_eq!(
        bad,
        [
            ("dns", Status::Vacuous),
            ("identity-symmetry", Status::Violated),
            ("dual-stack-parity", Status::Vacuous)
        ]
    );
    let find = |chain: &str, n: u32| {
        r.rules
            .iter()
            .find(|x| x.chain == chain && x.rule == n)
            .unwrap()
    };
    // Rule 5 needs -o lo and gid 1337: with uid 1337 rule 2 takes it (its destination is not
    // 127.0.0.1), with any other uid rule 3 does.
    let r5 = find("ISTIO_OUTPUT", 5);
    assert_eq!(r5.status, RuleStatus::Shadowed);
    let by5: Vec<u32> = r5.by.iter().map(|b| b.rule).collect();
    assert_eq!(by5, [2, 3]);
    // Rule 6 needs -o lo: rule 3 takes every uid but 1337, rule 4 takes 1337.
    let r6 = find("ISTIO_OUTPUT", 6);
    assert_eq!(r6.status, RuleStatus::Shadowed);
    let by6: Vec<u32> = r6.by.iter().map(|b| b.rule).collect();
    assert_eq!(by6, [3, 4]);
    // Rule 8 (-d 127.0.0.1/32): a routed connection to 127.0.0.1 leaves by lo and rules 3/4
    // take it; only a packet leaving another interface for 127.0.0.1 gets there.
    let r8 = find("ISTIO_OUTPUT", 8);
    assert_eq!(r8.status, RuleStatus::Unroutable);
    let p = r8.packet.unwrap();
    assert_eq!(p.dst, "127.0.0.1".parse::<IpAddr>().unwrap());
    assert!(p.out_iface.is_some_and(|o| o.as_str() != "lo"));
    for x in &r.rules {
        if !(x.chain == "ISTIO_OUTPUT" && [5, 6, 8].contains(&x.rule)) {
            assert_eq!(x.status, RuleStatus::Live, "{} {}", x.chain, x.rule);
        }
    }
}

/// `trace --json` arguments replaying `w` in case `c`: the replay command `check` prints
/// ([`replay_args`]), with the case's profile, when it has one, from the TOML beside the ruleset
/// (written to `profile_file`).
fn trace_args(c: &Case, profile_file: &Path, w: &sidecar_verify::check::Witness) -> Vec<String> {
    let mut a = replay_args(&c.path.display().to_string(), &c.pod, w);
    a.push("--json".into());
    if let Some(p) = &c.expect.profile {
        std::fs::write(profile_file, toml::to_string(p).unwrap()).unwrap();
        a.extend(["--profile".into(), profile_file.display().to_string()]);
    }
    a
}

#[test]
fn every_witness_replays_through_trace_with_the_same_journey() {
    let mut replayed = 0;
    let profile_file =
        std::env::temp_dir().join(format!("sv-check-profile-{}.toml", std::process::id()));
    for c in corpus_cases().into_iter().filter(|c| c.expect.sidecar) {
        let report = run(&c);
        // A relational invariant's witness is a pair: both connections are replayed.
        let witnesses = report.invariants.iter().flat_map(|i| {
            let first = i.witness.as_ref().zip(i.journey.as_ref());
            let pair = i.pair.as_ref().map(|p| (&p.witness, &p.journey));
            first.into_iter().chain(pair).map(move |wj| (i, wj))
        });
        for (inv, (w, journey)) in witnesses {
            let out = Command::new(env!("CARGO_BIN_EXE_sidecar-verify"))
                .args(trace_args(&c, &profile_file, w))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let traced: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let claimed = serde_json::to_value(journey).unwrap();
            assert_eq!(
                traced,
                claimed,
                "{} `{}`: trace gives another journey",
                c.path.display(),
                inv.id
            );
            replayed += 1;
        }
    }
    let _ = std::fs::remove_file(&profile_file);
    // The corpus had 24 witnesses when this was written (ambient and owner-group breaks included).
    assert!(replayed >= 24, "only {replayed} witnesses replayed");
}

/// Every hop of every witness journey, run through real netfilter, goes where the model says.
#[test]
fn every_witness_is_confirmed_by_the_kernel() {
    use sidecar_verify::kernel::{self, unavailable, TestPod};
    if let Some(why) = unavailable() {
        println!("skipping the kernel confirmation of witnesses: {why}");
        return;
    }
    let (mut confirmed, mut not_run) = (0, 0);
    for c in corpus_cases().into_iter().filter(|c| c.expect.sidecar) {
        // The kernel's pod has the addresses of both families: a case whose pod has others is
        // not run there.
        let kernel_ips: Vec<IpAddr> = kernel::POD_IPS.to_vec();
        if !c.expect.pod_ips.is_empty() && c.expect.pod_ips != kernel_ips {
            continue;
        }
        let report = run(&c);
        // Both journeys of a relational invariant's pair: the kernel confirms each hop of both,
        // so it confirms that they differ.
        let (flows, mut ports) = kernel::journey_flows(report.invariants.iter().flat_map(|i| {
            i.journey
                .as_ref()
                .into_iter()
                .chain(i.pair.as_ref().map(|p| &p.journey))
        }));
        ports.extend(&c.profile.proxy_ports);
        if flows.is_empty() {
            continue;
        }
        let sim = Simulator::new(&c.rs, Pod::new(&kernel::POD_IPS), c.profile.clone());
        ports.sort_unstable();
        ports.dedup();
        let mut tp =
            TestPod::create_with(Path::new(env!("CARGO_BIN_EXE_sidecar-verify")), &ports).unwrap();
        let r = kernel::run(&mut tp, &sim, &flows, 1).unwrap();
        assert!(
            r.disagreements.is_empty(),
            "{}: {:?}",
            c.path.display(),
            r.disagreements
        );
        confirmed += r.compared;
        println!(
            "{}: {} witness hop(s) confirmed in the kernel",
            c.path.display(),
            r.compared
        );
        // What the oracle cannot open yet (kernel::unsupported): a VM's virtual interface.
        if r.skipped_unsupported > 0 {
            println!(
                "{}: {} witness hop(s) not run in the kernel (kernel::unsupported)",
                c.path.display(),
                r.skipped_unsupported
            );
            not_run += r.skipped_unsupported;
        }
    }
    // Today only ambient-vm-bypass's VM hops; more means the oracle lost ground.
    assert!(not_run <= 2, "{not_run} witness hops not run in the kernel");
    assert!(confirmed >= 15, "only {confirmed} witness hops confirmed");
}

/// Whether the pod can produce `c` (the scope `check` proves over by default).
fn routable(pod: &Pod, profile: &Profile, c: &Connection) -> bool {
    let fam_ok = |a: IpAddr| a.is_ipv4() == c.dst.is_ipv4();
    if c.src.is_some_and(|s| !fam_ok(s)) || !pod.ips.iter().any(|ip| fam_ok(*ip)) {
        return false;
    }
    if c.from_outside {
        let src = c.src.unwrap_or(profile.remote_peer);
        return pod.ips.contains(&c.dst)
            && !pod.is_local(src)
            && src != profile.passthrough(sidecar_model::Family::Ipv4);
    }
    match c.src {
        None => true,
        Some(s) if pod.is_local(c.dst) => {
            pod.is_local(s) || s == IpAddr::V4(profile.passthrough_v4)
        }
        Some(s) => pod.ips.contains(&s),
    }
}

mod sampled {
    use super::*;
    use proptest::prelude::*;
    use sidecar_verify::invariants::{Concrete, ALL};

    fn conn() -> impl Strategy<Value = Connection> {
        let addrs = [
            "10.1.0.5",
            "127.0.0.1",
            "127.0.0.6",
            "127.1.2.3",
            "10.1.0.99",
            "10.96.0.1",
            "1.1.1.1",
            "9.9.1.1",
        ];
        let pool: Vec<IpAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
        let ports = [
            15001u16, 15006, 15008, 15090, 15020, 15021, 15000, 53, 80, 22, 8080, 5555, 3333,
        ];
        let ids = [0u32, 1000, 1337, 1_000_670_000];
        (
            any::<[u32; 8]>(),
            prop::sample::select(pool.clone()),
            prop::option::of(prop::sample::select(pool)),
        )
            .prop_map(move |(s, dst, src)| Connection {
                proto: if s[0] % 4 == 0 { 17 } else { 6 },
                src,
                dst,
                sport: if s[1] % 2 == 0 { 40000 } else { s[1] as u16 },
                dport: if s[2] % 4 == 0 {
                    s[3] as u16
                } else {
                    ports[s[3] as usize % ports.len()]
                },
                uid: ids[s[4] as usize % ids.len()],
                gid: ids[s[5] as usize % ids.len()],
                from_outside: s[6] % 3 == 0,
                mark: 0,
                iface: None,
            })
    }

    /// Every corpus case with its invariants' statuses, checked once.
    fn proved() -> &'static [(Case, Vec<Status>)] {
        static P: std::sync::OnceLock<Vec<(Case, Vec<Status>)>> = std::sync::OnceLock::new();
        P.get_or_init(|| {
            corpus_cases()
                .into_iter()
                .map(|c| {
                    let st = run(&c).invariants.iter().map(|i| i.status).collect();
                    (c, st)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Sampling through the concrete evaluator never contradicts a proof: on every corpus
        /// ruleset, an invariant `check` proved holds for random routable connections.
        #[test]
        fn sampled_connections_never_contradict_a_proof(conns in prop::collection::vec(conn(), 32)) {
            for (c, statuses) in proved() {
                let sim = Simulator::new(&c.rs, c.pod.clone(), c.profile.clone());
                for k in conns.iter().filter(|k| routable(&c.pod, &c.profile, k)) {
                    let j = sim.journey(k);
                    let (entry, first) = sim.first_packet(k);
                    let d = Concrete { entry, first, journey: &j, pod: &c.pod };
                    for (id, st) in ALL.iter().zip(statuses) {
                        if st.passes() {
                            prop_assert!(!id.violation(&d, &c.profile),
                                "{}: `{}` proved but {:?} violates it", c.path.display(), id.name(), k);
                        }
                    }
                }
            }
        }
    }
}

/// An invariant whose premise no connection meets is `vacuous`, never `holds`: with no inbound
/// port captured, `inbound-captured` has nothing to check, with no metrics port neither has
/// `metrics-bypass`; `check` still exits 0, and JSON says `"status": "vacuous"`. On the classic
/// ruleset with the istio profile every invariant speaks about some connection.
#[test]
fn an_invariant_with_nothing_to_check_is_vacuous_not_holds() {
    let rs = parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    let canonical = print_ruleset(&rs);
    let pod = Pod::new(&[]);
    let status = |p: &Profile| -> Vec<(&'static str, Status)> {
        check(&rs, &canonical, &pod, p, &Options::default())
            .unwrap()
            .invariants
            .iter()
            .map(|i| (i.id, i.status))
            .collect()
    };
    // On the classic ruleset only dns (no DNS capture) and dual-stack-parity (IPv4 only) are
    // vacuous; identity-symmetry is violated (the gid rules after the uid rules).
    let classic = status(&Profile::istio());
    let vacuous: Vec<&str> = classic
        .iter()
        .filter(|(_, s)| *s == Status::Vacuous)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(vacuous, ["dns", "dual-stack-parity"], "{classic:?}");
    let none_in = Profile {
        inbound_ports: Some(Vec::new()),
        ..Profile::istio()
    };
    for ((id, s), (_, before)) in status(&none_in).into_iter().zip(&classic) {
        // Nothing captured inbound: inbound-captured has nothing to check, and the classic
        // rules capturing every inbound port break exclusions-respected, whose include-list
        // part now says no inbound port is to be captured.
        let want = match id {
            "inbound-captured" => Status::Vacuous,
            "exclusions-respected" => Status::Violated,
            _ => *before,
        };
        assert_eq!(s, want, "{id} with inbound_ports = []");
    }
    let no_metrics = Profile {
        metrics_ports: Vec::new(),
        ..Profile::istio()
    };
    for ((id, s), (_, before)) in status(&no_metrics).into_iter().zip(&classic) {
        let want = if id == "metrics-bypass" {
            Status::Vacuous
        } else {
            *before
        };
        assert_eq!(s, want, "{id} with metrics_ports = []");
    }

    let dir = std::env::temp_dir().join(format!("sv-vacuous-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prof = dir.join("p.toml");
    // The uid-only ruleset passes with its profile (classic violates identity-symmetry): with
    // no metrics port promised, the exit code is still a pass's.
    let uid_only =
        std::fs::read_to_string(workspace().join("corpus/profiles/uid-only.toml")).unwrap();
    assert!(uid_only.contains("metrics_ports = [9901]\n"), "{uid_only}");
    std::fs::write(
        &prof,
        uid_only.replace("metrics_ports = [9901]\n", "metrics_ports = []\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sidecar-verify"))
        .args(["check", "--format", "json", "--profile"])
        .arg(&prof)
        .arg(workspace().join("corpus/rulesets/uid-only.rules"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inv = json["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "metrics-bypass")
        .unwrap();
    assert_eq!(inv["status"], "vacuous", "{inv}");
}

/// A proxy known by its uid alone: `corpus/profiles/uid-only.toml` is the profile the uid-only
/// ruleset's TOML gives inline (the corpus test proves every invariant holds with it, and its
/// broken variants fail); with the same values but identified by uid or gid (what every profile
/// meant before `proxy_identity`), an application whose gid is 5678 "violates"
/// proxy-not-recaptured: the false alarm the key removes.
#[test]
fn a_uid_only_proxy_passes_only_as_a_uid_only_profile() {
    let c = load(&workspace().join("corpus/rulesets/uid-only.rules"));
    let file = Profile::load(
        &workspace()
            .join("corpus/profiles/uid-only.toml")
            .display()
            .to_string(),
    )
    .unwrap();
    assert_eq!(file, c.profile);
    assert!(run(&c).invariants.iter().all(|i| i.status.passes()));
    let uid_or_gid = Profile {
        proxy_identity: None,
        ..file
    };
    let canonical = print_ruleset(&c.rs);
    let r = check(&c.rs, &canonical, &c.pod, &uid_or_gid, &Options::default()).unwrap();
    let bad: Vec<_> = r.invariants.iter().filter(|i| !i.status.passes()).collect();
    // identity-symmetry fails too: the rules know uid 5678 only, so "gid 5678" is an identity
    // they treat unlike the uid.
    let ids: Vec<&str> = bad.iter().map(|i| i.id).collect();
    assert_eq!(
        ids,
        ["proxy-not-recaptured", "identity-symmetry"],
        "{bad:?}"
    );
    let w = bad[0].witness.as_ref().unwrap();
    assert_ne!(w.uid, 5678, "{w:?}");
    assert_eq!(w.gid, 5678, "{w:?}");
}

/// A group name the profile cannot resolve leaves the owner match undecided: the invariants that
/// depend on it come out unknown, never as a pass; with the name resolved they are proved.
#[test]
fn an_unresolved_owner_name_is_unknown_not_a_pass() {
    let path = workspace().join("corpus/rulesets/owner-groups.rules");
    let c = load(&path);
    let mut unresolved = c.profile.clone();
    unresolved.groups.clear();
    let canonical = print_ruleset(&c.rs);
    let r = check(&c.rs, &canonical, &c.pod, &unresolved, &Options::default()).unwrap();
    let status = |r: &Report, id: &str| r.invariants.iter().find(|i| i.id == id).unwrap().status;
    assert_eq!(status(&r, "outbound-captured"), Status::Unknown);
    let r = run(&c);
    assert_eq!(status(&r, "outbound-captured"), Status::Holds);
}

/// The ids the README's list of invariants ("The invariants (ids are stable): `a`, `b`, …;")
/// names, in order.
fn readme_invariants(readme: &str) -> Vec<&str> {
    let head = "The invariants (ids are stable):";
    let start = readme.find(head).expect("the README lists the invariants") + head.len();
    let rest = &readme[start..];
    let list = &rest[..rest.find(';').expect("the list ends with `;`")];
    list.split('`').skip(1).step_by(2).collect()
}

/// Every invariant of the catalog is in the README's list, in report order, and nothing else is.
#[test]
fn the_readme_names_every_invariant() {
    let ids: Vec<&str> = sidecar_verify::invariants::ALL
        .iter()
        .map(|i| i.name())
        .collect();
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    assert_eq!(readme_invariants(&readme), ids);
    // The check sees an id left out: the README without `no-redirect-loop` fails it.
    let doctored = readme.replacen("`no-redirect-loop`,", "", 1);
    let listed = readme_invariants(&doctored);
    assert_ne!(listed, ids);
    let missing: Vec<&&str> = ids.iter().filter(|i| !listed.contains(i)).collect();
    assert_eq!(missing, [&"no-redirect-loop"]);
}

/// `--profile` takes the built-in profiles from their table: `--help` lists each with what it is,
/// a name that is neither a built-in profile nor a file is refused listing them, and each name
/// runs.
#[test]
fn the_profile_option_lists_the_builtin_profiles() {
    use sidecar_model::profile::BUILTIN;
    let bin = env!("CARGO_BIN_EXE_sidecar-verify");
    let trace_with = |profile: &str| {
        Command::new(bin)
            .args(["trace", "--dst", "10.1.0.99", "--dport", "80"])
            .args(["--profile", profile])
            .output()
            .unwrap()
    };
    let help = Command::new(bin)
        .args(["check", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let unknown = trace_with("osm");
    assert_eq!(unknown.status.code(), Some(2));
    let err = String::from_utf8(unknown.stderr).unwrap();
    assert!(err.starts_with("error: unknown profile `osm`"), "{err}");
    for b in BUILTIN {
        assert!(help.contains(b.name) && help.contains(b.about), "{help}");
        assert!(
            err.contains(&format!("`{}` ({})", b.name, b.about)),
            "{err}"
        );
        let ok = trace_with(b.name);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
}

/// Two backends holding capture rules (iptables-nft's `ip nat` as `nft list ruleset` shows it,
/// and a native `inet` table at the same place): `check` warns, naming both with their backend,
/// in its text and JSON; an iptables ruleset, which cannot have two tables at one place, gets
/// no warning.
#[test]
fn two_backends_capturing_at_one_place_are_named_in_a_warning() {
    let mixed = "table ip nat {\n\tchain OUTPUT {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tmeta l4proto tcp skuid != 1337 redirect to :15001\n\t}\n}\n\
        table inet istio-proxy-nat {\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tmeta l4proto tcp skuid != 1337 redirect to :15001\n\t}\n}\n";
    let dir = std::env::temp_dir().join(format!("sv-two-backends-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mixed.nft");
    std::fs::write(&path, mixed).unwrap();
    let run = |format: &str, file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_sidecar-verify"))
            .args(["check", "--format", format])
            .arg(file)
            .output()
            .unwrap()
    };
    let text = String::from_utf8(run("text", &path).stdout).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&run("json", &path).stdout).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let want = "warning: 2 tables capture IPv4 connections where iptables' nat table runs: `ip nat` (iptables-nft), `inet istio-proxy-nat` (nft) (oldest first)";
    assert!(text.contains(want), "{text}");
    let warnings = json["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        !text.contains("IPv6 connections"),
        "the ip table holds no IPv6: {text}"
    );
    let classic = run("json", &workspace().join("corpus/istio-classic.rules"));
    let json: serde_json::Value = serde_json::from_slice(&classic.stdout).unwrap();
    assert_eq!(json["warnings"], serde_json::json!([]));
}

/// `dns_upstream` decides whether the proxy's own DNS queries may reach the DNS listener.
/// Consul's rules send every query to 127.0.0.1:53, the proxy's too, to 127.0.0.1:8600: under
/// the built-in `consul` profile (consul-dataplane forwards over gRPC, `dns_upstream =
/// "other"`) that is no recapture, while for a listener that forwards as DNS the same rules
/// are a loop, and both invariants show the proxy's query to port 53 as the witness.
#[test]
fn dns_upstream_decides_whether_the_proxys_queries_may_reach_the_dns_listener() {
    let c = load(&workspace().join("corpus/rulesets/consul.rules"));
    let status = |r: &Report, id: &str| {
        let i = r.invariants.iter().find(|i| i.id == id).unwrap();
        (i.status, i.witness.clone())
    };
    let builtin = run(&c);
    for id in ["proxy-not-recaptured", "dns"] {
        assert_eq!(status(&builtin, id).0, Status::Holds, "{id} under consul");
    }
    let forwards_as_dns = Case {
        profile: Profile::from_toml("base = \"consul\"\ndns_upstream = \"dns\"\n").unwrap(),
        ..load(&workspace().join("corpus/rulesets/consul.rules"))
    };
    let r = run(&forwards_as_dns);
    for id in ["proxy-not-recaptured", "dns"] {
        let (st, w) = status(&r, id);
        assert_eq!(st, Status::Violated, "{id} with dns_upstream = dns");
        let w = w.unwrap();
        assert_eq!((w.uid, w.dport), (5995, 53), "{id}: {w:?}");
    }
    // Nothing else changes.
    let others = |r: &Report| -> Vec<(&str, Status)> {
        r.invariants
            .iter()
            .filter(|i| i.id != "proxy-not-recaptured" && i.id != "dns")
            .map(|i| (i.id, i.status))
            .collect()
    };
    assert_eq!(others(&builtin), others(&r));
}

/// Without RULES a command checks the profile's own ruleset: under `kuma` and `linkerd` every
/// invariant passes (our rulesets of their generators' defaults), under `consul` its finding
/// (`localhost-untouched`) is reported; the classic ruleset stays istio's (and a profile file's) default.
#[test]
fn without_rules_each_mesh_profile_checks_its_own_ruleset() {
    let bin = env!("CARGO_BIN_EXE_sidecar-verify");
    for (profile, file, code) in [
        ("kuma", "corpus/rulesets/kuma.rules", 0),
        ("linkerd", "corpus/rulesets/linkerd.rules", 0),
        ("consul", "corpus/rulesets/consul.rules", 1),
        ("istio", "corpus/istio-classic.rules", 1),
    ] {
        let json = |args: &[&str]| {
            let o = Command::new(bin)
                .args(["check", "--format", "json", "--profile", profile])
                .args(args)
                .current_dir(workspace())
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            (o.status.code(), v["ruleset"]["sha256"].clone())
        };
        let (c_default, sha_default) = json(&[]);
        let (c_file, sha_file) = json(&[file]);
        assert_eq!(
            (c_default, &sha_default),
            (Some(code), &sha_file),
            "{profile}"
        );
        assert_eq!(c_file, Some(code), "{profile}");
    }
    // The mesh a generator's flags describe decides it too (`--profile` left at its default).
    let sha = |args: &[&str]| {
        let o = Command::new(bin)
            .args(["check", "--format", "json"])
            .args(args)
            .current_dir(workspace())
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["ruleset"]["sha256"].clone()
    };
    assert_eq!(
        sha(&["--kuma-args", "--redirect-outbound-port 15001"]),
        sha(&["--profile", "kuma", "corpus/rulesets/kuma.rules"])
    );
}

/// `--deadline`: what the solver has not decided when the run's time is up is `unknown`
/// (exit 1, with the deadline named), never a pass; with time enough the verdicts are those of
/// a run without one.
#[test]
fn a_passed_deadline_leaves_nothing_holding() {
    let bin = env!("CARGO_BIN_EXE_sidecar-verify");
    let run = |args: &[&str]| {
        let o = Command::new(bin)
            .args([
                "check",
                "--format",
                "json",
                "corpus/rulesets/uid-only.rules",
            ])
            .args(["--profile", "corpus/profiles/uid-only.toml"])
            .args(args)
            .current_dir(workspace())
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.code(), v)
    };
    let (code, v) = run(&["--deadline", "0s"]);
    assert_eq!(code, Some(1));
    let inv = v["invariants"].as_array().unwrap();
    assert!(inv.iter().all(|i| i["status"] != "holds"), "{v}");
    let unknown: Vec<&serde_json::Value> =
        inv.iter().filter(|i| i["status"] == "unknown").collect();
    assert!(unknown.len() >= 8, "{} unknown", unknown.len());
    for i in unknown {
        assert!(i["reason"].as_str().unwrap().contains("--deadline"), "{i}");
    }
    let (code, timed) = run(&["--deadline", "10m"]);
    let (code_free, free) = run(&[]);
    assert_eq!((code, code_free), (Some(0), Some(0)));
    let statuses = |v: &serde_json::Value| -> Vec<String> {
        v["invariants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["status"].to_string())
            .collect()
    };
    assert_eq!(statuses(&timed), statuses(&free));
}

/// A sample (`-m statistic`) draws alike for the two connections of `identity-symmetry`: on a
/// kube-proxy table (a service's endpoint chosen at random) the proxy known by uid and known by
/// gid get the same journey, so the relation holds instead of resting on two different draws
/// (`unknown`); a rule that lets the gid alone through is still an asymmetry.
#[test]
fn samples_draw_alike_for_both_connections_of_a_pair() {
    let table = |extra: &str| {
        format!(
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
             :KUBE-SERVICES - [0:0]\n:KUBE-SVC-A - [0:0]\n:KUBE-SEP-A1 - [0:0]\n:KUBE-SEP-A2 - [0:0]\n\
             {extra}-A OUTPUT -j KUBE-SERVICES\n\
             -A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-A\n\
             -A KUBE-SVC-A -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A1\n\
             -A KUBE-SVC-A -j KUBE-SEP-A2\n\
             -A KUBE-SEP-A1 -p tcp -m tcp -j DNAT --to-destination 10.244.0.1:8080\n\
             -A KUBE-SEP-A2 -p tcp -m tcp -j DNAT --to-destination 10.244.0.2:8080\n\
             COMMIT\n"
        )
    };
    let symmetry = |text: &str| {
        let rs = parse("kube-proxy", text.as_bytes()).unwrap().ruleset;
        let pod = Pod::for_rulesets(&[], &[&rs]);
        let r = check(&rs, text, &pod, &Profile::istio(), &Options::default()).unwrap();
        let i = r
            .invariants
            .into_iter()
            .find(|i| i.id == "identity-symmetry")
            .unwrap();
        (i.status, i.reason)
    };
    assert_eq!(symmetry(&table("")).0, Status::Holds);
    let (st, why) = symmetry(&table("-A OUTPUT -m owner --gid-owner 1337 -j RETURN\n"));
    assert_eq!(st, Status::Violated, "{why:?}");
}
