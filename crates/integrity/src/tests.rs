//! Detector tests on small hand-made graphs, determinism, and never panicking.

use proptest::prelude::*;

use crate::gen::Rng;
use crate::*;

fn e(inv: &str, publ: &str, skill: &str, calls: u64, fen: i64) -> Edge {
    Edge {
        invoker: inv.into(),
        publisher: publ.into(),
        skill: skill.into(),
        calls,
        paid_fen: fen,
    }
}

fn sig(p: &str, kind: SignalKind, v: &str) -> IdentitySignal {
    IdentitySignal {
        party: p.into(),
        kind,
        value_hash: v.into(),
    }
}

fn only(input: &Input, d: Detector) -> Vec<Finding> {
    scan(input, &Thresholds::default())
        .into_iter()
        .filter(|f| f.detector == d)
        .collect()
}

fn names(f: &Finding) -> Vec<&str> {
    f.parties.iter().map(|p| p.0.as_str()).collect()
}

/// Honest background: 60 invokers spreading calls over 30 skills of 15 publishers.
fn background(rng: &mut Rng, edges: &mut Vec<Edge>) {
    for i in 0..60 {
        for _ in 0..6 {
            let s = rng.below(30);
            edges.push(e(
                &format!("h{i}"),
                &format!("hp{}", s / 2),
                &format!("hs{s}"),
                rng.range(1, 12),
                100,
            ));
        }
    }
}

#[test]
fn ring_of_two_from_the_issue_is_flagged_with_its_numbers() {
    let input = Input {
        edges: vec![e("X", "Y", "y-skill", 200, 40_000_000), e("Y", "X", "x-skill", 200, 10_000)],
        ..Input::default()
    };
    let f = only(&input, Detector::Reciprocity);
    assert_eq!(f.len(), 1);
    assert_eq!(names(&f[0]), ["X", "Y"]);
    assert_eq!(f[0].amount_at_stake_fen, 40_010_000);
    assert!(f[0].explanation_zh.contains("X→Y 200 次 ¥400,000.00"), "{}", f[0].explanation_zh);
    assert!(f[0].explanation_zh.contains("Y→X 200 次 ¥100.00"));
    assert!(f[0].explanation_zh.contains("往返占比 100%"));
    assert!(f[0].explanation_en.contains("X→Y 200 calls ¥400,000.00"));
    assert!(f[0].score > 0.9);
    assert_eq!(f[0].skills, vec![SkillId::from("x-skill"), SkillId::from("y-skill")]);
    assert_eq!(f[0].evidence.len(), 2);
    // and it is a ring too
    let c = only(&input, Detector::Cycle);
    assert_eq!(c.len(), 1);
    assert_eq!(names(&c[0]), ["X", "Y"]);
}

#[test]
fn light_reciprocity_is_not_flagged() {
    let input = Input {
        edges: vec![
            // a few calls one way against many
            e("A", "B", "b", 3, 3_000),
            e("B", "A", "a", 150, 150_000),
            // a handful each way
            e("C", "D", "d", 5, 50_000),
            e("D", "C", "c", 6, 60_000),
            // plenty of calls but pennies
            e("E", "F", "f", 40, 400),
            e("F", "E", "e", 40, 400),
        ],
        ..Input::default()
    };
    let f = scan(&input, &Thresholds::default());
    assert!(
        f.iter()
            .all(|f| f.detector != Detector::Reciprocity && f.detector != Detector::Cycle),
        "{f:#?}"
    );
}

#[test]
fn a_ring_of_three_among_honest_usage_is_a_cycle_not_a_reciprocal_pair() {
    let mut rng = Rng::new(7);
    let mut edges = Vec::new();
    background(&mut rng, &mut edges);
    edges.extend([
        e("A", "B", "b", 100, 100_000),
        e("B", "C", "c", 120, 120_000),
        e("C", "A", "a", 90, 90_000),
    ]);
    // camouflage: honest parties call the ring's skills a little, the ring calls honest skills
    edges.extend([
        e("h1", "A", "a", 2, 2_000),
        e("A", "hp1", "hs2", 3, 300),
        e("B", "hp3", "hs6", 4, 400),
    ]);
    let input = Input { edges, ..Input::default() };
    let c = only(&input, Detector::Cycle);
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(names(&c[0]), ["A", "B", "C"]);
    assert_eq!(c[0].amount_at_stake_fen, 310_000);
    assert!(
        c[0].explanation_en.contains("3 parties (A, B, C) form a ring"),
        "{}",
        c[0].explanation_en
    );
    assert!(only(&input, Detector::Reciprocity).is_empty());
}

#[test]
fn tarjan_is_iterative() {
    // one long cycle and one long path: a recursive version would overflow the stack
    let n = 300_000u32;
    let comps = crate::cycles::tarjan(n as usize, |v| if v + 1 < n { vec![v + 1] } else { vec![0] });
    assert_eq!(comps.len(), 1);
    assert_eq!(comps[0].len(), n as usize);
    let comps = crate::cycles::tarjan(n as usize, |v| if v + 1 < n { vec![v + 1] } else { vec![] });
    assert!(comps.is_empty());
    // two triangles joined by a one-way bridge
    let g: Vec<Vec<u32>> = vec![vec![1], vec![2], vec![0, 3], vec![4], vec![5], vec![3]];
    let comps = crate::cycles::tarjan(6, |v| g[v as usize].clone());
    let mut comps = comps;
    comps.sort();
    assert_eq!(comps, vec![vec![0, 1, 2], vec![3, 4, 5]]);
}

#[test]
fn a_cycle_larger_than_the_limit_is_not_flagged() {
    let edges: Vec<Edge> = (0..20)
        .map(|i| {
            e(
                &format!("p{i}"),
                &format!("p{}", (i + 1) % 20),
                &format!("s{}", (i + 1) % 20),
                100,
                10_000,
            )
        })
        .collect();
    let input = Input { edges, ..Input::default() };
    assert!(only(&input, Detector::Cycle).is_empty());
}

#[test]
fn a_camouflaged_dense_block_is_found_and_honest_heavy_users_are_not() {
    let mut rng = Rng::new(11);
    let mut edges = Vec::new();
    background(&mut rng, &mut edges);
    // two heavy users calling every honest skill a lot
    for h in ["heavy1", "heavy2"] {
        for s in 0..30 {
            edges.push(e(h, &format!("hp{}", s / 2), &format!("hs{s}"), 80, 8_000));
        }
    }
    // 10 sock puppets × 4 skills of publisher T, each also calling 3 honest skills
    for i in 0..10 {
        for s in 0..4 {
            edges.push(e(&format!("puppet{i}"), "T", &format!("t{s}"), 10, 1_000));
        }
        for _ in 0..3 {
            let s = rng.below(30);
            edges.push(e(&format!("puppet{i}"), &format!("hp{}", s / 2), &format!("hs{s}"), 2, 200));
        }
    }
    edges.push(e("h3", "T", "t0", 2, 200));
    let input = Input { edges, ..Input::default() };
    let f = only(&input, Detector::DenseBlock);
    assert_eq!(f.len(), 1, "{f:#?}");
    let mut want: Vec<String> = (0..10).map(|i| format!("puppet{i}")).collect();
    want.push("T".into());
    want.sort();
    assert_eq!(names(&f[0]), want.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(f[0].skills.len(), 4);
    assert_eq!(f[0].amount_at_stake_fen, 40_000);
    assert!(f[0].explanation_zh.contains("10 个调用方"), "{}", f[0].explanation_zh);
    assert!(scan(&input, &Thresholds::default())
        .iter()
        .all(|f| !f.parties.iter().any(|p| p.0.starts_with("heavy"))));
}

#[test]
fn honest_background_has_no_dense_block() {
    let mut rng = Rng::new(3);
    let mut edges = Vec::new();
    background(&mut rng, &mut edges);
    assert!(only(&Input { edges, ..Input::default() }, Detector::DenseBlock).is_empty());
}

#[test]
fn related_parties_need_calls_inside_and_a_meaningful_signal() {
    let mut edges = vec![e("A", "B", "b", 5, 5_000), e("B", "C", "c", 7, 700), e("D", "E", "e", 0, 0)];
    let mut signals = vec![
        sig("A", SignalKind::Phone, "phone-1"),
        sig("B", SignalKind::Phone, "phone-1"),
        sig("B", SignalKind::BankAccount, "bank-9"),
        sig("C", SignalKind::BankAccount, "bank-9"),
        // co-workers who never call each other
        sig("D", SignalKind::Address, "desk-1"),
        sig("F", SignalKind::Address, "desk-1"),
    ];
    // thirty parties behind one big cloud host calling each other: too common to mean anything
    for i in 0..30 {
        signals.push(sig(&format!("cloud{i}"), SignalKind::EndpointHost, "big-cloud"));
        edges.push(e(
            &format!("cloud{i}"),
            &format!("cloud{}", (i + 1) % 30),
            &format!("cs{}", (i + 1) % 30),
            3,
            300,
        ));
    }
    let input = Input {
        edges,
        signals,
        ..Input::default()
    };
    let f = only(&input, Detector::RelatedParties);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(names(&f[0]), ["A", "B", "C"]);
    assert_eq!(f[0].amount_at_stake_fen, 5_700);
    assert!(f[0].explanation_zh.contains("共用同一收款账户"), "{}", f[0].explanation_zh);
    assert!(f[0].explanation_en.contains("share the same phone number"));
    assert!((f[0].score - 1.0).abs() < 1e-9);
}

#[test]
fn concentration_flags_a_pumped_skill_not_a_heavy_users_niche_tool() {
    let mut edges = vec![
        // U exists to pay S
        e("U", "P", "S", 300, 300_000),
        e("U", "hp", "popular", 2, 200),
        e("h1", "P", "S", 3, 3_000),
        e("h2", "P", "S", 2, 2_000),
    ];
    // H is the main customer of niche N, but N is a small part of what H spends
    edges.push(e("H", "Q", "N", 300, 300_000));
    edges.push(e("h3", "Q", "N", 2, 2_000));
    for i in 0..20 {
        edges.push(e("H", &format!("q{i}"), &format!("other{i}"), 100, 100_000));
    }
    let input = Input { edges, ..Input::default() };
    let f = only(&input, Detector::Concentration);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].skills, vec![SkillId::from("S")]);
    assert_eq!(names(&f[0]), ["P", "U"]);
    assert_eq!(f[0].amount_at_stake_fen, 300_000);
    assert!(f[0].explanation_zh.contains("98%"), "{}", f[0].explanation_zh);
}

#[test]
fn concentration_counts_a_cluster_of_invokers_as_one() {
    let edges = vec![
        e("U1", "P", "S", 100, 100_000),
        e("U2", "P", "S", 100, 100_000),
        e("U3", "P", "S", 100, 100_000),
        e("h", "P", "S", 5, 5_000),
    ];
    let signals = vec![
        sig("U1", SignalKind::Person, "founder"),
        sig("U2", SignalKind::Person, "founder"),
        sig("U3", SignalKind::Phone, "ph"),
        sig("U2", SignalKind::Phone, "ph"),
    ];
    let f = only(
        &Input {
            edges: edges.clone(),
            signals,
            ..Input::default()
        },
        Detector::Concentration,
    );
    assert_eq!(f.len(), 1);
    assert_eq!(names(&f[0]), ["P", "U1", "U2", "U3"]);
    assert!(f[0].explanation_en.contains("3 related invokers"), "{}", f[0].explanation_en);
    // without the signals no single invoker dominates
    assert!(only(&Input { edges, ..Input::default() }, Detector::Concentration).is_empty());
}

#[test]
fn timing_flags_a_timer_not_organic_traffic() {
    let mut rng = Rng::new(5);
    let regular: Vec<i64> = (0..100).map(|i| 1_000_000 + i * 60_000 + rng.range(0, 600) as i64).collect();
    let mut t = 0i64;
    let organic: Vec<i64> = (0..300)
        .map(|_| {
            t += (-(rng.f64().max(1e-9)).ln() * 60_000.0) as i64 + 1;
            t
        })
        .collect();
    let input = Input {
        edges: vec![e("bot", "P", "S", 100, 100_000)],
        timings: vec![
            TimingSeries {
                party: "bot".into(),
                skill: Some("S".into()),
                key: "k1".into(),
                timestamps_ms: regular,
            },
            TimingSeries {
                party: "human".into(),
                skill: None,
                key: "k2".into(),
                timestamps_ms: organic,
            },
            TimingSeries {
                party: "few".into(),
                skill: None,
                key: "k3".into(),
                timestamps_ms: vec![0, 1000, 2000],
            },
        ],
        ..Input::default()
    };
    let f = only(&input, Detector::Timing);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(names(&f[0]), ["P", "bot"]);
    assert_eq!(f[0].amount_at_stake_fen, 100_000);
    assert!(f[0].explanation_zh.contains("平均每 60.0 秒一次"), "{}", f[0].explanation_zh);
}

#[test]
fn timing_flags_a_burst_not_a_busy_day() {
    let mut rng = Rng::new(8);
    let day = 86_400_000i64;
    // 20 calls spread over 30 days, then 150 calls in five minutes
    let mut burst: Vec<i64> = (0..20).map(|i| i * day * 3 / 2).collect();
    burst.extend((0..150).map(|i| 30 * day + i * 2_000));
    // organic: steady Poisson traffic for 30 days, 800 calls
    let mut t = 0i64;
    let organic: Vec<i64> = (0..800)
        .map(|_| {
            t += (-(rng.f64().max(1e-9)).ln() * (30.0 * day as f64 / 800.0)) as i64 + 1;
            t
        })
        .collect();
    let input = Input {
        timings: vec![
            TimingSeries {
                party: "pump".into(),
                skill: None,
                key: "k1".into(),
                timestamps_ms: burst,
            },
            TimingSeries {
                party: "human".into(),
                skill: None,
                key: "k2".into(),
                timestamps_ms: organic,
            },
        ],
        ..Input::default()
    };
    let f = only(&input, Detector::Timing);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(names(&f[0]), ["pump"]);
    assert!(
        f[0].explanation_zh.contains("150 次集中在 10.0 分钟之内"),
        "{}",
        f[0].explanation_zh
    );
}

#[test]
fn output_does_not_depend_on_input_order() {
    let g = crate::gen::generate(&crate::gen::Config {
        honest_parties: 400,
        rings: 5,
        clusters: 4,
        blocks: 1,
        pumped: 3,
        honest_timings: 20,
        ..crate::gen::Config::quality(9)
    });
    let th = Thresholds::default();
    let a = scan(&g.input, &th);
    let mut shuffled = g.input.clone();
    let mut rng = Rng::new(1);
    rng.shuffle(&mut shuffled.edges);
    rng.shuffle(&mut shuffled.signals);
    rng.shuffle(&mut shuffled.timings);
    let b = scan(&shuffled, &th);
    assert!(!a.is_empty());
    assert_eq!(a, b);
    // sorted by detector, then score descending
    assert!(a
        .windows(2)
        .all(|w| w[0].detector < w[1].detector || (w[0].detector == w[1].detector && w[0].score >= w[1].score)));
}

#[test]
fn the_generator_scenarios_are_found_with_precision_and_recall_of_at_least_0_9() {
    let configs = [1, 2, 3]
        .map(crate::gen::Config::quality)
        .into_iter()
        .chain([crate::gen::Config::hard(4)]);
    for cfg in configs {
        let seed = cfg.seed;
        let g = crate::gen::generate(&cfg);
        let findings = scan(&g.input, &Thresholds::default());
        let r = crate::gen::evaluate(&findings, &g.truth);
        for q in &r.per_detector {
            assert!(q.truth > 0, "seed {seed}: nothing planted for {:?}", q.detector);
            assert!(q.precision() >= 0.9, "seed {seed}: {q:?}");
            assert!(q.recall() >= 0.9, "seed {seed}: {q:?}");
        }
        assert!(r.heavy_flagged.is_empty(), "seed {seed}: heavy users flagged {:?}", r.heavy_flagged);
        assert!(
            r.light_pairs_flagged.is_empty(),
            "seed {seed}: light pairs flagged {:?}",
            r.light_pairs_flagged
        );
        assert!(
            r.shared_address_flagged.is_empty(),
            "seed {seed}: co-workers flagged {:?}",
            r.shared_address_flagged
        );
    }
}

#[test]
fn empty_input_gives_nothing() {
    assert!(scan(&Input::default(), &Thresholds::default()).is_empty());
}

fn arb_input() -> impl Strategy<Value = Input> {
    let party = prop::sample::select(vec!["", "a", "b", "c", "d", "e", "f"]);
    let edge = (
        party.clone(),
        party.clone(),
        prop::sample::select(vec!["s1", "s2", "s3", "s4", ""]),
        any::<u64>(),
        any::<i64>(),
    )
        .prop_map(|(i, p, s, c, f)| e(i, p, s, c % 1_000 + if c % 7 == 0 { u64::MAX - 1_000 } else { 0 }, f));
    let kind = prop::sample::select(SignalKind::ALL.to_vec());
    let signal = (party.clone(), kind, prop::sample::select(vec!["", "v1", "v2"])).prop_map(|(p, k, v)| sig(p, k, v));
    let timing = (party, prop::collection::vec(any::<i64>(), 0..40)).prop_map(|(p, ts)| TimingSeries {
        party: p.into(),
        skill: Some("s1".into()),
        key: "k".into(),
        timestamps_ms: ts,
    });
    (
        prop::collection::vec(edge, 0..60),
        prop::collection::vec(signal, 0..20),
        prop::collection::vec(timing, 0..4),
    )
        .prop_map(|(edges, signals, timings)| Input { edges, signals, timings })
}

proptest! {
    #[test]
    fn scan_never_panics(input in arb_input(), tiny in any::<bool>()) {
        let th = if tiny {
            Thresholds {
                reciprocity_min_calls: 0,
                reciprocity_min_fen: 0,
                cycle_min_edge_calls: 0,
                cycle_min_inside_calls: 0,
                cycle_min_inside_fen: 0,
                dense_min_edge_calls: 0,
                dense_min_rows: 0,
                dense_min_cols: 0,
                dense_min_density_ratio: 0.0,
                dense_min_exclusivity: 0.0,
                concentration_min_calls: 0,
                concentration_min_fen: 0,
                concentration_min_focus: 0.0,
                timing_min_calls: 0,
                timing_max_cv: 10.0,
                timing_burst_window_ms: 0,
                timing_burst_min_calls: 0,
                timing_burst_factor: 0.0,
                ..Thresholds::default()
            }
        } else {
            Thresholds::default()
        };
        let f = scan(&input, &th);
        for x in &f {
            prop_assert!((0.0..=1.0).contains(&x.score));
            prop_assert!(!x.explanation_zh.is_empty() && !x.explanation_en.is_empty());
        }
        prop_assert_eq!(f, scan(&input, &th));
    }
}
