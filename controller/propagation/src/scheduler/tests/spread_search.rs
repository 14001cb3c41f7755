//! The group search, group selection and group weights of spreading, on their own: Karmada's
//! `select_groups_test.go`, `select_clusters_by_region_test.go` and `group_clusters_test.go`
//! cases (scores there are arbitrary, beyond what ClusterLocality gives).

use super::super::spread::{
    Bounds, Choice, Group, Member, Shortfall, Weighing, group_weight, pick, search,
};

/// `(name, value, weight)` rows.
fn choices<'a>(rows: &[(&'a str, i64, i64)]) -> Vec<Choice<'a>> {
    rows.iter()
        .map(|&(name, value, weight)| Choice {
            name,
            value,
            weight,
        })
        .collect()
}

#[test]
fn search_matches_karmada_select_groups() {
    // (name, groups, minGroups, maxGroups, target, chosen names in order)
    type Row<'a> = (
        &'a str,
        Vec<(&'a str, i64, i64)>,
        usize,
        usize,
        i64,
        Vec<&'a str>,
    );
    let rows: Vec<Row<'_>> = vec![
        ("empty groups", vec![], 2, 3, 1, vec![]),
        ("no enough groups", vec![("R1", 1, 80)], 2, 3, 1, vec![]),
        (
            "no enough value",
            vec![("R1", 1, 80), ("R2", 2, 30)],
            2,
            3,
            4,
            vec![],
        ),
        ("select one group", vec![("R1", 1, 80)], 1, 3, 1, vec!["R1"]),
        (
            "prioritize one path",
            vec![
                ("R1", 1, 80),
                ("R3", 1, 80),
                ("R2", 1, 60),
                ("R5", 2, 60),
                ("R4", 5, 50),
                ("R6", 3, 50),
            ],
            1,
            3,
            10,
            vec!["R5", "R4", "R6"],
        ),
        (
            "select groups with less total number",
            vec![
                ("R1", 1, 80),
                ("R2", 4, 40),
                ("R3", 1, 30),
                ("R4", 3, 30),
                ("R5", 3, 20),
                ("R6", 5, 10),
            ],
            2,
            6,
            5,
            vec!["R1", "R2"],
        ),
        (
            "select groups with the highest score",
            vec![
                ("R1", 1, 60),
                ("R2", 1, 50),
                ("R3", 1, 40),
                ("R4", 3, 30),
                ("R5", 3, 20),
                ("R6", 3, 10),
            ],
            1,
            3,
            6,
            vec!["R1", "R4", "R5"],
        ),
        (
            "select groups that are chosen earlier",
            vec![("R1", 1, 60), ("R2", 2, 50), ("R3", 3, 40), ("R4", 4, 30)],
            1,
            2,
            5,
            vec!["R1", "R4"],
        ),
        (
            "select groups with greater value",
            vec![("R4", 1, 60), ("R3", 3, 50), ("R1", 3, 40), ("R2", 4, 30)],
            1,
            2,
            5,
            vec!["R3", "R1"],
        ),
        // Karmada's sub-path rule: [G1, G2] is the heaviest, but G1 alone qualifies.
        (
            "a qualifying leading part replaces the heaviest",
            vec![("G1", 5, 100), ("G2", 1, 50)],
            1,
            2,
            5,
            vec!["G1"],
        ),
        // Greedy by weight would take R1 then R2 (3 clusters): R1 + R3 is the heaviest pair
        // reaching 4.
        (
            "the heaviest qualifying pair, not the heaviest prefix",
            vec![("R1", 2, 90), ("R2", 1, 80), ("R3", 2, 70)],
            2,
            2,
            4,
            vec!["R1", "R3"],
        ),
        // Nothing to reach: the first `minGroups` combination found among the heaviest.
        (
            "target 0: the heaviest combination of minGroups",
            vec![("A", 1, 10), ("B", 3, 30), ("C", 2, 30)],
            2,
            3,
            0,
            vec!["B", "C"],
        ),
        (
            "maxGroups below minGroups never qualifies",
            vec![("A", 1, 10), ("B", 1, 10)],
            2,
            1,
            1,
            vec![],
        ),
    ];
    for (name, rows, min, max, target, want) in rows {
        let choices = choices(&rows);
        let got: Vec<&str> = search(&choices, min, max, target)
            .unwrap_or_default()
            .into_iter()
            .map(|i| choices[i].name)
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn search_ties_on_weight_and_value_go_to_the_first_found() {
    // All equal (first scheduling, one cluster per zone): the first combination in search order
    // (value, then weight, then name) wins; the search stays fast with many groups.
    let names: Vec<String> = (0..40).map(|i| format!("z{i:02}")).collect();
    let choices: Vec<Choice<'_>> = names
        .iter()
        .map(|name| Choice {
            name,
            value: 1,
            weight: 1000,
        })
        .collect();
    let got: Vec<&str> = search(&choices, 3, 20, 10)
        .unwrap_or_default()
        .into_iter()
        .map(|i| choices[i].name)
        .collect();
    assert_eq!(
        got,
        names[..10].iter().map(String::as_str).collect::<Vec<_>>()
    );
}

/// A region of `(cluster, score, available)` members, with the given weight.
fn region<'a>(name: &'a str, weight: i64, members: &[(&'a str, i64, i64)]) -> Group<'a> {
    Group {
        name,
        weight,
        members: members
            .iter()
            .enumerate()
            .map(|(index, &(name, score, available))| Member {
                index,
                name,
                score,
                available,
            })
            .collect(),
    }
}

fn bounds(min: usize, max: usize) -> Bounds {
    Bounds { min, max }
}

#[test]
fn pick_matches_karmada_select_clusters_by_region() {
    let two = || {
        vec![
            region("R1", 100, &[("member1", 100, 40), ("member2", 80, 40)]),
            region(
                "R2",
                80,
                &[
                    ("member3", 80, 40),
                    ("member4", 80, 40),
                    ("member5", 60, 40),
                ],
            ),
        ]
    };
    let four = || {
        vec![
            region("R1", 90, &[("member1", 90, 40)]),
            region(
                "R2",
                70,
                &[
                    ("member2", 70, 40),
                    ("member3", 60, 40),
                    ("member4", 30, 40),
                ],
            ),
            region("R3", 80, &[("member5", 80, 40), ("member6", 50, 60)]),
            region(
                "R4",
                50,
                &[
                    ("member7", 50, 50),
                    ("member8", 40, 50),
                    ("member9", 10, 50),
                    ("member10", 0, 50),
                ],
            ),
        ]
    };
    let five = vec![
        region("R1", 70, &[("member1", 70, 40)]),
        region(
            "R2",
            40,
            &[
                ("member2", 40, 40),
                ("member3", 40, 40),
                ("member4", 40, 40),
            ],
        ),
        region("R3", 60, &[("member5", 60, 40), ("member6", 50, 60)]),
        region("R4", 70, &[("member7", 70, 100)]),
        region("R5", 50, &[("member8", 50, 50)]),
    ];
    type Row<'a> = (
        &'a str,
        Vec<Group<'a>>,
        Bounds,
        Bounds,
        Result<Vec<&'a str>, Shortfall>,
    );
    let rows: Vec<Row<'_>> = vec![
        (
            "select cluster from the region with the higher score",
            two(),
            bounds(1, 1),
            bounds(2, 2),
            Ok(vec!["member1", "member2"]),
        ),
        (
            "select cluster from the region with enough clusters",
            two(),
            bounds(1, 1),
            bounds(3, 3),
            Ok(vec!["member3", "member4", "member5"]),
        ),
        (
            "select cluster from the region with enough clusters and higher score",
            four(),
            bounds(2, 2),
            bounds(4, 5),
            Ok(vec!["member1", "member2", "member3", "member4"]),
        ),
        (
            "select cluster from more than `minGroups` regions with enough clusters and higher score",
            five,
            bounds(1, 3),
            bounds(6, 8),
            Ok(vec![
                "member1", "member5", "member2", "member6", "member3", "member4",
            ]),
        ),
        (
            "no enough region",
            two(),
            bounds(3, 3),
            bounds(3, 3),
            Err(Shortfall::Groups),
        ),
        (
            "no enough clusters",
            two(),
            bounds(1, 1),
            bounds(4, 4),
            Err(Shortfall::Clusters),
        ),
        (
            "no more regions to replace",
            vec![region(
                "R1",
                100,
                &[("member1", 100, 40), ("member2", 80, 20)],
            )],
            bounds(1, 1),
            bounds(3, 4),
            Err(Shortfall::Clusters),
        ),
    ];
    for (name, groups, regions, clusters, want) in rows {
        let got = pick(groups, regions, Some(clusters))
            .map(|members| members.iter().map(|m| m.name).collect::<Vec<_>>());
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn pick_without_cluster_constraint_takes_whole_groups() {
    // Members come best first: equal scores, c has more available replicas.
    let groups = vec![
        region("R1", 10, &[("a", 0, 1)]),
        region("R2", 20, &[("b", 0, 1), ("c", 0, 2)]),
    ];
    let got = pick(groups, bounds(1, 1), None)
        .map(|members| members.iter().map(|m| m.name).collect::<Vec<_>>());
    assert_eq!(got, Ok(vec!["c", "b"]));
}

/// Karmada's group search done literally: every combination the depth-first walk stops at,
/// ranked, then the leading-part rule. The pruned [`search`] must agree with it.
fn exhaustive(choices: &[Choice<'_>], min: usize, max: usize, target: i64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..choices.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&choices[a], &choices[b]);
        (a.value, -a.weight, a.name).cmp(&(b.value, -b.weight, b.name))
    });
    // (weight, value, discovery number, members heaviest first)
    let mut found: Vec<(i64, i64, usize, Vec<usize>)> = Vec::new();
    fn walk(
        choices: &[Choice<'_>],
        order: &[usize],
        limits: (usize, usize, i64),
        path: &mut Vec<usize>,
        sum: i64,
        from: usize,
        found: &mut Vec<(i64, i64, usize, Vec<usize>)>,
    ) {
        let (min, max, target) = limits;
        if sum >= target && path.len() >= min && path.len() <= max {
            let mut members = path.clone();
            members.sort_by(|&a, &b| {
                (-choices[a].weight, choices[a].name).cmp(&(-choices[b].weight, choices[b].name))
            });
            let weight = members.iter().map(|&i| choices[i].weight).sum();
            found.push((weight, sum, found.len(), members));
            return;
        }
        if path.len() >= max {
            return;
        }
        for next in from..order.len() {
            path.push(order[next]);
            let value = choices[order[next]].value;
            walk(choices, order, limits, path, sum + value, next + 1, found);
            path.pop();
        }
    }
    walk(
        choices,
        &order,
        (min, max, target),
        &mut Vec::new(),
        0,
        0,
        &mut found,
    );
    found.sort_by_key(|a| (-a.0, -a.1, a.2));
    let mut chosen: Option<&Vec<usize>> = None;
    for (_, _, _, members) in &found {
        match chosen {
            None => chosen = Some(members),
            Some(current)
                if members.len() < current.len() && current[..members.len()] == members[..] =>
            {
                chosen = Some(members);
            }
            Some(_) => {}
        }
    }
    chosen.cloned().unwrap_or_default()
}

#[test]
fn search_agrees_with_the_exhaustive_walk() {
    // A small xorshift generator: reproducible inputs without extra crates.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    let names: Vec<String> = (0..9).map(|i| format!("g{i}")).collect();
    for round in 0..3000 {
        let count = 1 + usize::try_from(next(8)).unwrap_or(0);
        // Few distinct weights and values, to exercise the tie-breaks.
        let choices: Vec<Choice<'_>> = names[..count]
            .iter()
            .map(|name| Choice {
                name,
                value: i64::try_from(next(4)).unwrap_or(0) + 1,
                weight: i64::try_from(next(3)).unwrap_or(0) * 1000
                    + [0, 50, 100][usize::try_from(next(3)).unwrap_or(0)],
            })
            .collect();
        let min = 1 + usize::try_from(next(3)).unwrap_or(0);
        let max = min + usize::try_from(next(4)).unwrap_or(0);
        let target = i64::try_from(next(10)).unwrap_or(0);
        let want = exhaustive(&choices, min, max, target);
        let got = search(&choices, min, max, target).unwrap_or_default();
        assert_eq!(
            got, want,
            "round {round}: {choices:?} min {min} max {max} target {target}"
        );
    }
}

/// `count` members named member1…, with the given scores and available replicas.
fn members(scores: &[i64], available: &[i64]) -> Vec<Member<'static>> {
    const NAMES: [&str; 5] = ["member1", "member2", "member3", "member4", "member5"];
    scores
        .iter()
        .zip(available)
        .enumerate()
        .map(|(index, (&score, &available))| Member {
            index,
            name: NAMES[index],
            score,
            available,
        })
        .collect()
}

#[test]
fn group_weight_matches_karmada_calc_group_score() {
    let duplicated = |replicas| Weighing::Duplicated { replicas };
    // Karmada's cases divide over 2 groups without a cluster constraint: at least 2 clusters.
    let divided = |replicas| Weighing::Divided {
        replicas,
        min_groups: 2,
        min_clusters: 2,
    };
    // (id, group 1, group 2, weighing, group 1 weighs at least as much)
    type Row = (
        u8,
        Vec<Member<'static>>,
        Vec<Member<'static>>,
        Weighing,
        bool,
    );
    let rows: Vec<Row> = vec![
        // More clusters can take all replicas.
        (
            1,
            members(&[100, 100, 0, 0, 0], &[30, 30, 30, 30, 30]),
            members(&[100, 100, 100, 100, 100], &[30, 30, 30, 10, 10]),
            duplicated(20),
            true,
        ),
        // As many able clusters: the higher mean score wins.
        (
            2,
            members(&[100, 100, 0, 0, 0], &[30, 30, 30, 10, 10]),
            members(&[100, 100, 100, 100, 100], &[30, 30, 30, 10, 10]),
            duplicated(20),
            false,
        ),
        // Aggregated: group 1 reaches its share (50 of 100 over 2 groups), group 2 does not.
        (
            3,
            members(&[100, 100, 0, 0, 0], &[30, 30, 30, 10, 10]),
            members(&[100, 100, 100, 100, 100], &[10, 10, 10, 5, 5]),
            divided(100),
            true,
        ),
        // Dynamic weights: neither reaches it; group 1 has more available replicas.
        (
            4,
            members(&[100, 100, 0, 0, 0], &[10, 10, 10, 10, 5]),
            members(&[100, 100, 100, 100, 100], &[10, 10, 10, 5, 5]),
            divided(100),
            true,
        ),
        // Karmada's static-weight row (divided formula): same replicas, higher mean score.
        (
            5,
            members(&[100, 100, 0, 0, 0], &[10, 10, 10, 5, 5]),
            members(&[100, 100, 100, 100, 100], &[10, 10, 10, 5, 5]),
            divided(100),
            false,
        ),
        // Both reach the share: the higher score of the clusters it took wins.
        (
            6,
            members(&[0, 0, 0, 0, 0], &[100, 100, 100, 100, 100]),
            members(&[100, 100, 100, 100, 100], &[50, 50, 50, 50, 50]),
            divided(100),
            false,
        ),
    ];
    for (id, first, second, weighing, first_wins) in rows {
        let (one, two) = (
            group_weight(&first, weighing),
            group_weight(&second, weighing),
        );
        assert_eq!(one >= two, first_wins, "case {id}: {one} vs {two}");
    }
    // Exact values.
    let group = members(&[100, 100, 0, 0, 0], &[30, 30, 30, 10, 10]);
    assert_eq!(group_weight(&group, duplicated(20)), 3066);
    assert_eq!(
        group_weight(&group, divided(100)),
        50_100,
        "share ceil(100 / 2) = 50, reached by the first two clusters"
    );
    assert_eq!(
        group_weight(&members(&[100, 0], &[2, 3]), divided(12)),
        5000 + 50,
        "share 6 out of reach: 1000 × 5 available + mean of all scores"
    );
    // Karmada's Test_CalcGroupScoreForDuplicate: no cluster, or none that can take the
    // replicas, weighs 0 (its guard against dividing by zero).
    assert_eq!(group_weight(&[], duplicated(10)), 0);
    assert_eq!(
        group_weight(&members(&[50, 50], &[5, 5]), duplicated(10)),
        0
    );
    assert_eq!(group_weight(&group, duplicated(31)), 0);
}

#[test]
fn group_weight_matches_the_examples_in_karmadas_calc_group_score() {
    // The worked examples in the comments of `calcGroupScore` and `calcGroupScoreForDuplicate`
    // (Karmada 1.18, `pkg/scheduler/core/spreadconstraint/group_clusters.go`): 100 replicas,
    // group minGroups 2, cluster minGroups 1, so each group aims at 50 replicas over at least 2
    // clusters; and 50 duplicated replicas.
    let divided = Weighing::Divided {
        replicas: 100,
        min_groups: 2,
        min_clusters: 2,
    };
    let duplicated = Weighing::Duplicated { replicas: 50 };
    let rows: Vec<(&str, Vec<Member<'static>>, Weighing, i64)> = vec![
        (
            "divided, short of the share: 45 × 1000 + 100",
            members(&[100, 100, 100, 100, 100], &[10, 10, 10, 10, 5]),
            divided,
            45_100,
        ),
        (
            "divided, share reached by two clusters: 50 × 1000 + 0",
            members(&[0, 0, 0, 0], &[40, 30, 10, 10]),
            divided,
            50_000,
        ),
        (
            "divided, both reach the share: 50 × 1000 + 100",
            members(&[100, 100, 100, 100, 100], &[40, 40, 10, 10, 5]),
            divided,
            50_100,
        ),
        (
            "divided, one cluster holds the share but two are needed: 50 × 1000 + 0",
            members(&[0, 0, 0, 0], &[100, 100, 10, 10]),
            divided,
            50_000,
        ),
        (
            "duplicated, two clusters can run 50: 2 × 1000 + 100",
            members(&[100, 100, 100, 100, 100], &[70, 60, 40, 30, 10]),
            duplicated,
            2100,
        ),
        (
            "duplicated, four clusters can run 50: 4 × 1000 + 0",
            members(&[0, 0, 0, 0], &[60, 60, 60, 60]),
            duplicated,
            4000,
        ),
        (
            "duplicated, two can, score 0: 2 × 1000 + 0",
            members(&[0, 0, 0, 0], &[100, 100, 10, 10]),
            duplicated,
            2000,
        ),
    ];
    for (name, group, weighing, want) in rows {
        assert_eq!(group_weight(&group, weighing), want, "{name}");
    }
}

#[test]
fn divided_group_weight_keeps_taking_clusters_until_the_cluster_minimum() {
    // Karmada takes clusters until it has both the share and max(cluster minGroups, group
    // minGroups) of them: the mean score then covers every cluster taken.
    let group = members(&[100, 100, 0], &[20, 5, 5]);
    let weighing = |min_clusters| Weighing::Divided {
        replicas: 10,
        min_groups: 1,
        min_clusters,
    };
    assert_eq!(group_weight(&group, weighing(1)), 10_100);
    assert_eq!(group_weight(&group, weighing(2)), 10_100);
    assert_eq!(group_weight(&group, weighing(3)), 10_066);
    // Fewer clusters than the minimum: every cluster counts, the share still caps the weight.
    assert_eq!(group_weight(&group, weighing(5)), 10_066);
    // The share is rounded up: 10 over 3 groups is 4, which the first cluster holds.
    let thirds = Weighing::Divided {
        replicas: 10,
        min_groups: 3,
        min_clusters: 3,
    };
    assert_eq!(group_weight(&members(&[0], &[4]), thirds), 4000);
}
