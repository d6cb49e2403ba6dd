//! The mutation operators of `sidecar_model::mutate`, one test per operator on a small ruleset,
//! asserting the exact mutants (the edit in words and the rule's text after it).

#![cfg(test)]

use sidecar_model::mutate::{mutants, Operator};
use sidecar_model::{parse, print_ruleset};

/// A nat table with `rules` in OUTPUT (and a user chain X).
fn ruleset(rules: &[&str]) -> sidecar_model::Ruleset {
    let mut text = String::from("*nat\n:OUTPUT ACCEPT [0:0]\n:X - [0:0]\n");
    for r in rules {
        text.push_str(r);
        text.push('\n');
    }
    text.push_str("COMMIT\n");
    parse("t", text.as_bytes()).unwrap().ruleset
}

/// The mutants `op` makes, as (rule number, the edit, the text after).
fn made(rules: &[&str], op: Operator) -> Vec<(u32, String, Option<String>)> {
    mutants(&ruleset(rules))
        .into_iter()
        .filter(|(m, _)| m.operator == op)
        .map(|(m, _)| (m.rule, m.edit, m.after))
        .collect()
}

fn one(rule: u32, change: &str, after: &str) -> (u32, String, Option<String>) {
    (rule, change.to_string(), Some(after.to_string()))
}

#[test]
fn delete_removes_each_rule_once() {
    let rules = ["-A OUTPUT -p tcp -j X", "-A X -j RETURN"];
    let rs = ruleset(&rules);
    let del: Vec<_> = mutants(&rs)
        .into_iter()
        .filter(|(m, _)| m.operator == Operator::DeleteRule)
        .collect();
    assert_eq!(del.len(), 2);
    let (m, r) = &del[0];
    assert_eq!(
        (m.chain.as_str(), m.rule, m.after.as_deref()),
        ("OUTPUT", 1, None)
    );
    assert_eq!(m.before, "-A OUTPUT -p tcp -j X");
    assert!(r
        .table(sidecar_model::Family::Ipv4, sidecar_model::TableKind::Nat)
        .unwrap()
        .chain("OUTPUT")
        .unwrap()
        .rules
        .is_empty());
    assert_eq!(del[1].0.chain, "X");
}

#[test]
fn swap_with_next_skips_the_last_rule_and_equal_neighbours() {
    let rules = [
        "-A OUTPUT -d 10.0.0.1/32 -j RETURN",
        "-A OUTPUT -j X",
        "-A OUTPUT -j X",
    ];
    assert_eq!(
        made(&rules, Operator::SwapWithNext),
        [one(1, "swap with rule 2", "-A OUTPUT -j X")]
    );
    let rs = ruleset(&rules);
    let (_, swapped) = mutants(&rs)
        .into_iter()
        .find(|(m, _)| m.operator == Operator::SwapWithNext)
        .unwrap();
    let text = print_ruleset(&swapped);
    let a = text.find("-A OUTPUT -j X").unwrap();
    let b = text.find("-A OUTPUT -d 10.0.0.1/32 -j RETURN").unwrap();
    assert!(a < b, "{text}");
}

#[test]
fn drop_negation_drops_each_bang_separately() {
    let r = "-A OUTPUT ! -d 127.0.0.1/32 ! -o lo -p tcp -m tcp ! --dport 15008 -m owner ! --uid-owner 1337 -j X";
    assert_eq!(
        made(&[r], Operator::DropNegation),
        [
            one(1, "drop `!` of `-d`", "-A OUTPUT -d 127.0.0.1/32 ! -o lo -p tcp -m tcp ! --dport 15008 -m owner ! --uid-owner 1337 -j X"),
            one(1, "drop `!` of `-o`", "-A OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner ! --uid-owner 1337 -j X"),
            one(1, "drop `!` of `--dport`", "-A OUTPUT ! -d 127.0.0.1/32 ! -o lo -p tcp -m tcp --dport 15008 -m owner ! --uid-owner 1337 -j X"),
            one(1, "drop `!` of `--uid-owner`", "-A OUTPUT ! -d 127.0.0.1/32 ! -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j X"),
        ]
    );
}

#[test]
fn port_shift_moves_each_port_of_matches_and_targets() {
    let rules = [
        "-A OUTPUT -p tcp -m tcp --sport 0 --dport 65535 -j RETURN",
        "-A OUTPUT -p tcp -m multiport --dports 80,8000:8002 -j RETURN",
        "-A X -p tcp -j REDIRECT --to-ports 15001",
    ];
    assert_eq!(
        made(&rules, Operator::PortShift),
        [
            // 0 has no port below it, 65535 none above.
            one(
                1,
                "`--sport` 0 → 1",
                "-A OUTPUT -p tcp -m tcp --sport 1 --dport 65535 -j RETURN"
            ),
            one(
                1,
                "`--dport` 65535 → 65534",
                "-A OUTPUT -p tcp -m tcp --sport 0 --dport 65534 -j RETURN"
            ),
            one(
                2,
                "`--dports` 80 → 79",
                "-A OUTPUT -p tcp -m multiport --dports 79,8000:8002 -j RETURN"
            ),
            one(
                2,
                "`--dports` 80 → 81",
                "-A OUTPUT -p tcp -m multiport --dports 81,8000:8002 -j RETURN"
            ),
            one(
                2,
                "`--dports` 8000 → 7999",
                "-A OUTPUT -p tcp -m multiport --dports 80,7999:8002 -j RETURN"
            ),
            one(
                2,
                "`--dports` 8000 → 8001",
                "-A OUTPUT -p tcp -m multiport --dports 80,8001:8002 -j RETURN"
            ),
            one(
                2,
                "`--dports` 8002 → 8001",
                "-A OUTPUT -p tcp -m multiport --dports 80,8000:8001 -j RETURN"
            ),
            one(
                2,
                "`--dports` 8002 → 8003",
                "-A OUTPUT -p tcp -m multiport --dports 80,8000:8003 -j RETURN"
            ),
            one(
                1,
                "`--to-ports` port 15001 → 15000",
                "-A X -p tcp -j REDIRECT --to-ports 15000"
            ),
            one(
                1,
                "`--to-ports` port 15001 → 15002",
                "-A X -p tcp -j REDIRECT --to-ports 15002"
            ),
        ]
    );
}

#[test]
fn owner_id_shift_moves_uid_and_gid() {
    assert_eq!(
        made(
            &["-A OUTPUT -m owner --uid-owner 0 --gid-owner 1337 -j RETURN"],
            Operator::OwnerIdShift
        ),
        [
            one(
                1,
                "`--uid-owner` 0 → 1",
                "-A OUTPUT -m owner --uid-owner 1 --gid-owner 1337 -j RETURN"
            ),
            one(
                1,
                "`--gid-owner` 1337 → 1336",
                "-A OUTPUT -m owner --uid-owner 0 --gid-owner 1336 -j RETURN"
            ),
            one(
                1,
                "`--gid-owner` 1337 → 1338",
                "-A OUTPUT -m owner --uid-owner 0 --gid-owner 1338 -j RETURN"
            ),
        ]
    );
}

#[test]
fn return_accept_swaps_the_two_verdicts_only() {
    assert_eq!(
        made(
            &[
                "-A OUTPUT -o lo -j RETURN",
                "-A OUTPUT -j ACCEPT",
                "-A OUTPUT -j DROP"
            ],
            Operator::ReturnAccept
        ),
        [
            one(1, "RETURN → ACCEPT", "-A OUTPUT -o lo -j ACCEPT"),
            one(2, "ACCEPT → RETURN", "-A OUTPUT -j RETURN"),
        ]
    );
}

#[test]
fn prefix_length_and_address_bit_edit_cidrs() {
    let rules = ["-A OUTPUT -s 127.0.0.6/32 -d 10.0.0.0/8 -j RETURN"];
    assert_eq!(
        made(&rules, Operator::PrefixLength),
        [
            one(
                1,
                "`-s` 127.0.0.6/32 → 127.0.0.6/31",
                "-A OUTPUT -s 127.0.0.6/31 -d 10.0.0.0/8 -j RETURN"
            ),
            one(
                1,
                "`-d` 10.0.0.0/8 → 10.0.0.0/7",
                "-A OUTPUT -s 127.0.0.6/32 -d 10.0.0.0/7 -j RETURN"
            ),
            one(
                1,
                "`-d` 10.0.0.0/8 → 10.0.0.0/9",
                "-A OUTPUT -s 127.0.0.6/32 -d 10.0.0.0/9 -j RETURN"
            ),
        ]
    );
    assert_eq!(
        made(&rules, Operator::AddressBit),
        [
            one(
                1,
                "`-s` 127.0.0.6/32 → 127.0.0.7/32",
                "-A OUTPUT -s 127.0.0.7/32 -d 10.0.0.0/8 -j RETURN"
            ),
            one(
                1,
                "`-d` 10.0.0.0/8 → 11.0.0.0/8",
                "-A OUTPUT -s 127.0.0.6/32 -d 11.0.0.0/8 -j RETURN"
            ),
        ]
    );
}

#[test]
fn remove_match_takes_out_one_match_at_a_time() {
    assert_eq!(
        made(&["-A OUTPUT -o lo -p tcp -m tcp --dport 15008 -m owner --uid-owner 1337 -m comment --comment x -j X"], Operator::RemoveMatch),
        [
            one(1, "remove `-o`", "-A OUTPUT -p tcp -m tcp --dport 15008 -m owner --uid-owner 1337 -m comment --comment x -j X"),
            // Not loadable (a port option without `-p`): the caller counts it invalid.
            one(1, "remove `-p`", "-A OUTPUT -o lo -m tcp --dport 15008 -m owner --uid-owner 1337 -m comment --comment x -j X"),
            one(1, "remove `--dport`", "-A OUTPUT -o lo -p tcp -m owner --uid-owner 1337 -m comment --comment x -j X"),
            one(1, "remove `--uid-owner`", "-A OUTPUT -o lo -p tcp -m tcp --dport 15008 -m comment --comment x -j X"),
        ]
    );
}

#[test]
fn jump_to_return_changes_jumps_and_gotos() {
    assert_eq!(
        made(
            &[
                "-A OUTPUT -p tcp -j X",
                "-A OUTPUT -g X",
                "-A OUTPUT -j ACCEPT"
            ],
            Operator::JumpToReturn
        ),
        [
            one(1, "`X` → RETURN", "-A OUTPUT -p tcp -j RETURN"),
            one(2, "`X` → RETURN", "-A OUTPUT -j RETURN"),
        ]
    );
}

#[test]
fn every_operator_is_named_and_found_by_its_name() {
    for op in Operator::ALL {
        assert_eq!(Operator::from_name(op.name()), Some(op));
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            format!("\"{}\"", op.name())
        );
    }
}

/// The classic ruleset's mutants: how many each operator makes (a change here is a change of
/// the operators, which README's counts depend on).
#[test]
fn classic_mutants_by_operator() {
    let rs = parse("c", sidecar_model::DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    let all = mutants(&rs);
    let count = |op| all.iter().filter(|(m, _)| m.operator == op).count();
    // 19 rules; 13 have a next rule in their chain (ISTIO_INBOUND 5, ISTIO_OUTPUT 8), none equal
    // to it.
    assert_eq!(count(Operator::DeleteRule), 19);
    assert_eq!(count(Operator::SwapWithNext), 13);
    assert_eq!(count(Operator::DropNegation), 4);
    // 5 --dport and 2 --to-ports, each ±1.
    assert_eq!(count(Operator::PortShift), 14);
    // 6 owner ids, each ±1.
    assert_eq!(count(Operator::OwnerIdShift), 12);
    // 5 RETURNs in ISTIO_INBOUND, 6 in ISTIO_OUTPUT.
    assert_eq!(count(Operator::ReturnAccept), 11);
    assert_eq!(count(Operator::PrefixLength), 4);
    assert_eq!(count(Operator::AddressBit), 4);
    assert_eq!(count(Operator::JumpToReturn), 6);
    // Every mutant differs from the ruleset.
    assert!(all.iter().all(|(_, r)| *r != rs));
}
