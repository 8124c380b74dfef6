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
    rng.shuffle(&mut shuffled.payments);
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
    let timing = (party.clone(), prop::collection::vec(any::<i64>(), 0..40)).prop_map(|(p, ts)| TimingSeries {
        party: p.into(),
        skill: Some("s1".into()),
        key: "k".into(),
        timestamps_ms: ts,
    });
    let day = prop_oneof![any::<i64>(), 20_400i64..20_500];
    let discount = (party.clone(), party.clone(), any::<i64>()).prop_map(|(o, c, f)| DiscountEdge {
        operator: o.into(),
        opc: c.into(),
        discount_fen: f,
    });
    let payment = (party.clone(), party.clone(), any::<u64>(), any::<i64>()).prop_map(|(e, o, n, f)| PaymentEdge {
        enterprise: e.into(),
        opc: o.into(),
        payments: n,
        paid_fen: f,
    });
    let price =
        (prop::sample::select(vec!["s1", "s2", ""]), party.clone(), day.clone(), any::<i64>()).prop_map(|(s, p, d, f)| PricePoint {
            skill: s.into(),
            publisher: p.into(),
            day: d,
            at_ms: d.wrapping_mul(86_400_000) ^ f,
            price_fen: f,
        });
    let daily = (party, day, any::<u64>(), any::<i64>()).prop_map(|(p, d, c, f)| DailyCalls {
        publisher: p.into(),
        day: d,
        calls: c,
        paid_fen: f,
    });
    (
        prop::collection::vec(edge, 0..60),
        prop::collection::vec(signal, 0..20),
        prop::collection::vec(timing, 0..4),
        prop::collection::vec(discount, 0..30),
        prop::collection::vec(payment, 0..10),
        prop::collection::vec(price, 0..12),
        prop::collection::vec(daily, 0..60),
    )
        .prop_map(|(edges, signals, timings, discounts, payments, prices, daily)| Input {
            edges,
            signals,
            timings,
            discounts,
            payments,
            prices,
            daily,
        })
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
                discount_min_fen: 0,
                discount_min_opcs: 0,
                discount_handful: 0,
                discount_min_share: 0.0,
                price_jump_factor: 0.0,
                price_jump_min_fen: 0,
                price_window_days: 0,
                price_volume_min_calls: 0,
                price_volume_factor: 0.0,
                period_end_days: 0,
                period_end_min_calls: 0,
                period_end_factor: 0.0,
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

// ---- issue 18 item 2: discounts, round trips, prices, period ends

fn disc(op: &str, opc: &str, fen: i64) -> DiscountEdge {
    DiscountEdge {
        operator: op.into(),
        opc: opc.into(),
        discount_fen: fen,
    }
}

fn pay(e: &str, o: &str, n: u64, fen: i64) -> PaymentEdge {
    PaymentEdge {
        enterprise: e.into(),
        opc: o.into(),
        payments: n,
        paid_fen: fen,
    }
}

fn price(skill: &str, publ: &str, day: i64, fen: i64) -> PricePoint {
    PricePoint {
        skill: skill.into(),
        publisher: publ.into(),
        day,
        at_ms: day * 86_400_000,
        price_fen: fen,
    }
}

/// A skill listed at ¥1.00 in the morning and raised to ¥1,000.00 at noon has jumped.
#[test]
fn a_price_jump_on_the_day_the_skill_was_listed_is_a_jump() {
    let mut morning = price("s1", "p1", 20_000, 100);
    morning.at_ms += 3_600_000;
    let mut noon = price("s1", "p1", 20_000, 100_000);
    noon.at_ms += 12 * 3_600_000;
    for prices in [vec![morning.clone(), noon.clone()], vec![noon, morning]] {
        let input = Input {
            prices,
            daily: vec![calls("p1", 20_000, 50, 5_000_000)],
            ..Input::default()
        };
        let found: Vec<Finding> = scan(&input, &Thresholds::default())
            .into_iter()
            .filter(|f| f.detector == Detector::PriceJump)
            .collect();
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].amount_at_stake_fen, 5_000_000);
        assert!(found[0].explanation_zh.contains("¥1.00") && found[0].explanation_zh.contains("¥1,000.00"));
    }
}

fn calls(publ: &str, day: i64, n: u64, fen: i64) -> DailyCalls {
    DailyCalls {
        publisher: publ.into(),
        day,
        calls: n,
        paid_fen: fen,
    }
}

fn ymd(y: i64, m: u32, d: u32) -> i64 {
    crate::civil::days_from_civil(y, m, d)
}

/// Operator O gives most of its discount to A, B and C; Z's 20 OPCs follow a Zipf curve
/// (exponent 1) and W's 10 OPCs a steeper one (exponent 1.5); V has only 5 OPCs.
fn discounts() -> Vec<DiscountEdge> {
    let mut d = vec![
        disc("O", "A", 60_000),
        disc("O", "A", 40_000), // rows are summed
        disc("O", "B", 80_000),
        disc("O", "C", 60_000),
        disc("O", "refund", -5_000), // negative counts as 0: no discount
    ];
    for i in 0..9 {
        d.push(disc("O", &format!("o{i}"), 1_000));
    }
    for k in 1..=20 {
        d.push(disc("Z", &format!("z{k}"), 1_000_000 / k));
    }
    for k in 1..=10i32 {
        d.push(disc("W", &format!("w{k}"), (1_000_000.0 / f64::from(k).powf(1.5)) as i64));
    }
    for k in 1..=5 {
        d.push(disc("V", &format!("v{k}"), 500_000));
    }
    d
}

#[test]
fn discount_concentration_flags_an_operator_feeding_a_handful_not_heavy_tailed_usage() {
    let input = Input {
        discounts: discounts(),
        ..Input::default()
    };
    let f = only(&input, Detector::DiscountConcentration);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(names(&f[0]), ["A", "B", "C", "O"]);
    assert_eq!(f[0].amount_at_stake_fen, 240_000);
    assert!((f[0].score - 240.0 / 249.0).abs() < 1e-9);
    assert_eq!(
        f[0].evidence,
        vec![
            ("O".into(), "A".into(), 0, 100_000),
            ("O".into(), "B".into(), 0, 80_000),
            ("O".into(), "C".into(), 0, 60_000),
        ]
    );
    let zh = &f[0].explanation_zh;
    assert!(zh.contains("共向 12 家 OPC 让利 ¥2,490.00"), "{zh}");
    assert!(
        zh.contains("96%（¥2,400.00）集中在 3 家：A ¥1,000.00、B ¥800.00、C ¥600.00"),
        "{zh}"
    );
    assert!(f[0].explanation_en.contains("Operator O gave 12 OPCs a discount of ¥2,490.00"));
    // Zipf with exponent 1 over 20 OPCs: the top 3 get 51%; exponent 1.5 over 10: 78%.
    let th = Thresholds {
        discount_min_share: 0.5,
        ..Thresholds::default()
    };
    let loose: Vec<_> = scan(&input, &th)
        .into_iter()
        .filter(|f| f.detector == Detector::DiscountConcentration)
        .collect();
    assert_eq!(loose.len(), 3, "{loose:#?}"); // O, W and Z but never V (5 OPCs)
}

#[test]
fn a_payment_between_related_parties_is_a_round_trip_and_between_strangers_it_is_not() {
    let mut signals = vec![
        // E pays its own OPC O (the same payout account)
        sig("E", SignalKind::BankAccount, "bank-1"),
        sig("O", SignalKind::BankAccount, "bank-1"),
        sig("E", SignalKind::Address, "desk-1"),
        sig("O", SignalKind::Address, "desk-1"),
        // F and G are tied through X: F–X the same phone, X–G the same address
        sig("F", SignalKind::Phone, "ph-1"),
        sig("X", SignalKind::Phone, "ph-1"),
        sig("X", SignalKind::Address, "desk-2"),
        sig("G", SignalKind::Address, "desk-2"),
        sig("S", SignalKind::Person, "someone"),
    ];
    // thirty parties on one big cloud host: too common to relate C0 and C1
    for i in 0..30 {
        signals.push(sig(&format!("C{i}"), SignalKind::EndpointHost, "big-cloud"));
    }
    let input = Input {
        signals,
        payments: vec![
            pay("E", "O", 2, 3_000_000),
            pay("E", "O", 1, 2_000_000),
            pay("F", "G", 1, 800_000),
            pay("E", "S", 4, 9_000_000), // a stranger
            pay("C0", "C1", 1, 500_000),
            pay("O", "E", 0, 0), // nothing paid
        ],
        ..Input::default()
    };
    let f = only(&input, Detector::RoundTrip);
    assert_eq!(f.len(), 2, "{f:#?}");
    assert_eq!(names(&f[0]), ["E", "O"]);
    assert_eq!(f[0].amount_at_stake_fen, 5_000_000);
    assert!((f[0].score - 1.0).abs() < 1e-9);
    assert_eq!(f[0].evidence, vec![("E".into(), "O".into(), 3, 5_000_000)]);
    let zh = &f[0].explanation_zh;
    assert!(zh.contains("企业 E 向 OPC O 确认了 3 笔合作付款、共 ¥50,000.00"), "{zh}");
    assert!(zh.contains("E 与 O 共用同一收款账户、同一工位/地址"), "{zh}");
    assert!(zh.contains("M2.4"), "{zh}");
    let en = &f[0].explanation_en;
    assert!(en.contains("E and O share the same payout bank account"), "{en}");
    assert!(en.contains("M2.4 should not count it"), "{en}");
    // the chain through X: as strong as its weakest tie (an address, 0.7)
    assert_eq!(names(&f[1]), ["F", "G"]);
    assert!((f[1].score - 0.7).abs() < 1e-9);
    assert!(
        f[1].explanation_zh.contains("F 与 X 共用同一手机号；X 与 G 共用同一工位/地址"),
        "{}",
        f[1].explanation_zh
    );
    assert!(f[1].explanation_zh.contains("¥8,000.00"));
    // a party paying itself is a round trip too
    let own = only(
        &Input {
            payments: vec![pay("Y", "Y", 1, 10_000)],
            ..Input::default()
        },
        Detector::RoundTrip,
    );
    assert_eq!(own.len(), 1);
    assert_eq!(names(&own[0]), ["Y"]);
    assert!(
        own[0].explanation_en.contains("they are the same party"),
        "{}",
        own[0].explanation_en
    );
}

#[test]
fn a_price_jump_with_paid_calls_after_it_is_flagged_not_a_modest_rise_or_a_jump_nobody_pays() {
    let d0 = ymd(2026, 3, 1);
    let mut daily = Vec::new();
    for d in 0..30 {
        daily.push(calls("P", d0 + d, 10, 1_000));
        daily.push(calls("M", d0 + d, 10, 1_000));
        if d < 10 {
            daily.push(calls("N", d0 + d, 10, 1_000)); // nobody calls after the jump
        }
    }
    let input = Input {
        prices: vec![
            // P: ¥1.00 → ¥200.00 on day 10, back to ¥1.00 on day 20; T: free → ¥150.00
            price("S", "P", d0, 100),
            price("S", "P", d0 + 10, 20_000),
            price("S", "P", d0 + 10, 5_000), // the same day: the highest counts
            price("S", "P", d0 + 20, 100),
            price("T", "P", d0 + 25, 0),
            price("T", "P", d0 + 27, 15_000),
            // M: ¥100.00 → ¥150.00 (×1.5)
            price("R", "M", d0, 10_000),
            price("R", "M", d0 + 10, 15_000),
            // N: ×10 but no calls after it
            price("Q", "N", d0, 2_000),
            price("Q", "N", d0 + 15, 20_000),
        ],
        daily,
        ..Input::default()
    };
    let f = only(&input, Detector::PriceJump);
    assert_eq!(f.len(), 2, "{f:#?}");
    let s = f.iter().find(|f| f.skills == [SkillId::from("S")]).expect("S jumps");
    assert_eq!(names(s), ["P"]);
    assert_eq!(s.amount_at_stake_fen, 10_000); // days 10..20
    assert!((s.score - 0.995).abs() < 1e-9);
    assert_eq!(s.evidence, vec![("P".into(), "P".into(), 100, 10_000)]);
    let zh = &s.explanation_zh;
    assert!(zh.contains("于 2026-03-11 把单次调用价格从 ¥1.00 提到 ¥200.00（200.0 倍）"), "{zh}");
    assert!(zh.contains("到 2026-03-21 下一次调价为止"), "{zh}");
    assert!(zh.contains("100 次付费调用、¥100.00"), "{zh}");
    assert!(s.explanation_en.contains("went from ¥1.00 to ¥200.00 a call (200.0×)"));
    let t = f.iter().find(|f| f.skills == [SkillId::from("T")]).expect("T jumps");
    assert!((t.score - 1.0).abs() < 1e-9);
    assert_eq!(t.amount_at_stake_fen, 3_000); // days 27..30
    assert!(t.explanation_zh.contains("从免费提到 ¥150.00"), "{}", t.explanation_zh);
    assert!(t.explanation_en.contains("from free to ¥150.00"), "{}", t.explanation_en);
}

#[test]
fn volume_that_multiplies_after_a_price_rise_is_flagged_demand_that_holds_is_not() {
    let d0 = ymd(2026, 5, 1);
    let mut daily = Vec::new();
    for d in 0..20 {
        daily.push(calls("P", d0 + d, if d < 10 { 5 } else { 30 }, if d < 10 { 500 } else { 4_500 }));
        daily.push(calls("H", d0 + d, if d < 10 { 10 } else { 9 }, 1_000));
    }
    let input = Input {
        prices: vec![
            price("S", "P", d0, 100),
            price("S", "P", d0 + 10, 150),
            price("K", "H", d0, 100),
            price("K", "H", d0 + 10, 150),
        ],
        daily,
        ..Input::default()
    };
    let f = only(&input, Detector::VolumeAfterRise);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(names(&f[0]), ["P"]);
    assert_eq!(f[0].skills, [SkillId::from("S")]);
    assert_eq!(f[0].amount_at_stake_fen, 7 * 4_500);
    assert!((f[0].score - (1.0 - 1.0 / 6.0)).abs() < 1e-9);
    let zh = &f[0].explanation_zh;
    assert!(zh.contains("于 2026-05-11 从 ¥1.00 涨价到 ¥1.50（1.5 倍）"), "{zh}");
    assert!(
        zh.contains("涨价后 7 天内该发布方收到 210 次付费调用、¥315.00，是涨价前 7 天（35 次）的 6.0 倍"),
        "{zh}"
    );
    assert!(f[0].explanation_en.contains("6.0× the 35 calls of the 7 days before"));
    // the ×1.5 rise is no price jump
    assert!(only(&input, Detector::PriceJump).is_empty());
}

#[test]
fn a_year_end_spike_is_flagged_not_month_ends_a_little_busier() {
    let mut daily = Vec::new();
    // P: 10 calls a day through November and December 2025, 200 a day on December 29–31
    for d in ymd(2025, 11, 1)..=ymd(2025, 12, 31) {
        let n = if d >= ymd(2025, 12, 29) { 200 } else { 10 };
        daily.push(calls("P", d, n, n as i64 * 100));
    }
    // Q: month ends at 1.5× normal; R: active only at month ends (no baseline)
    for d in ymd(2025, 1, 1)..=ymd(2025, 12, 31) {
        let (end, _) = crate::civil::month_end(d);
        let n = if d > end - 3 { 60 } else { 40 };
        daily.push(calls("Q", d, n, n as i64 * 100));
        if d > end - 3 {
            daily.push(calls("R", d, 100, 10_000));
        }
    }
    // M: spikes at the ends of March and June, quiet otherwise
    for d in ymd(2025, 3, 1)..=ymd(2025, 6, 30) {
        let (end, _) = crate::civil::month_end(d);
        let spike = d > end - 3 && (d < ymd(2025, 4, 1) || d > ymd(2025, 6, 1));
        daily.push(calls("M", d, if spike { 50 } else { 2 }, if spike { 5_000 } else { 200 }));
    }
    let input = Input { daily, ..Input::default() };
    let f = only(&input, Detector::PeriodEndSpike);
    assert_eq!(f.len(), 2, "{f:#?}");
    let p = f.iter().find(|f| names(f) == ["P"]).expect("P spikes");
    assert_eq!(p.amount_at_stake_fen, 60_000);
    assert!((p.score - 0.95).abs() < 1e-9); // 600 calls against 3 × 10
    assert_eq!(p.evidence, vec![("P".into(), "P".into(), 600, 60_000)]);
    let zh = &p.explanation_zh;
    assert!(
        zh.contains("在 2025 年 12 月的最后 3 天（2025-12-29 至 2025-12-31）收到 600 次付费调用、¥600.00，是平时同样天数的 20.0 倍"),
        "{zh}"
    );
    assert!(zh.contains("其他 55 个有调用的日子日均 10.0 次"), "{zh}"); // Nov 1–27, Dec 1–28
    assert!(zh.contains("这正是 2025 年的年末（补贴按年结算）"), "{zh}");
    assert!(p.explanation_en.contains("this is the 2025 year-end"), "{}", p.explanation_en);
    let m = f.iter().find(|f| names(f) == ["M"]).expect("M spikes");
    assert_eq!(m.amount_at_stake_fen, 30_000);
    assert!(
        m.explanation_zh.contains("共有 2 个月末出现这样的突增，合计 300 次、¥300.00"),
        "{}",
        m.explanation_zh
    );
    assert!(m.explanation_zh.contains("2025 年 3 月"), "{}", m.explanation_zh); // March 29–31: 25×; June 28–30: 25× too, March first
}

#[test]
fn the_new_detectors_do_not_depend_on_input_order() {
    let d0 = ymd(2025, 12, 1);
    let mut daily = Vec::new();
    for d in 0..31 {
        for (p, n) in [("P", if d >= 28 { 100 } else { 3 }), ("Q", if d >= 10 { 40 } else { 4 })] {
            // two rows a day: summed
            daily.push(calls(p, d0 + d, n / 2, 50 * n as i64));
            daily.push(calls(p, d0 + d, n - n / 2, 50 * n as i64));
        }
    }
    let input = Input {
        edges: vec![e("E", "O", "o-skill", 5, 500)],
        signals: vec![
            sig("E", SignalKind::Phone, "ph"),
            sig("O", SignalKind::Phone, "ph"),
            sig("O", SignalKind::Person, "pp"),
            sig("O2", SignalKind::Person, "pp"),
        ],
        discounts: discounts(),
        payments: vec![pay("E", "O", 1, 100_000), pay("E", "O2", 2, 200_000), pay("O2", "E", 1, 1)],
        prices: vec![
            price("S", "P", d0, 100),
            price("S", "P", d0 + 10, 50_000),
            price("S", "P", d0 + 10, 20_000),
            price("T", "Q", d0, 100),
            price("T", "Q", d0 + 10, 200),
            price("T", "Q", d0 + 10, 300),
        ],
        daily,
        ..Input::default()
    };
    let th = Thresholds::default();
    let a = scan(&input, &th);
    for d in [
        Detector::DiscountConcentration,
        Detector::RoundTrip,
        Detector::PriceJump,
        Detector::VolumeAfterRise,
        Detector::PeriodEndSpike,
    ] {
        assert!(a.iter().any(|f| f.detector == d), "{d:?} found nothing: {a:#?}");
    }
    let mut rng = Rng::new(42);
    for _ in 0..10 {
        let mut s = input.clone();
        rng.shuffle(&mut s.edges);
        rng.shuffle(&mut s.signals);
        rng.shuffle(&mut s.discounts);
        rng.shuffle(&mut s.payments);
        rng.shuffle(&mut s.prices);
        rng.shuffle(&mut s.daily);
        assert_eq!(scan(&s, &th), a);
    }
}

#[test]
fn detector_codes_and_names_are_distinct() {
    let codes: std::collections::BTreeSet<_> = Detector::ALL.iter().map(|d| d.code()).collect();
    let zh: std::collections::BTreeSet<_> = Detector::ALL.iter().map(|d| d.name_zh()).collect();
    let en: std::collections::BTreeSet<_> = Detector::ALL.iter().map(|d| d.name_en()).collect();
    assert_eq!((codes.len(), zh.len(), en.len()), (11, 11, 11));
    assert!(Detector::ALL.windows(2).all(|w| w[0] < w[1]));
}
