//! Machine-regular intervals between a key's calls (see the crate docs).

use crate::index::Index;
use crate::text::yuan;
use crate::{Detector, Finding, Thresholds};

/// Coefficient of variation of the intervals of sorted timestamps, and the mean interval (ms).
pub(crate) fn interval_cv(ts: &[i64]) -> Option<(f64, f64)> {
    let mut t = ts.to_vec();
    t.sort_unstable();
    let gaps: Vec<f64> = t.windows(2).map(|w| (w[1] as f64) - (w[0] as f64)).collect();
    if gaps.is_empty() {
        return None;
    }
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    if mean <= 0.0 || !mean.is_finite() {
        return None;
    }
    let var = gaps.iter().map(|g| (g - mean) * (g - mean)).sum::<f64>() / n;
    Some((var.sqrt() / mean, mean))
}

/// The most calls in any window of `timing_burst_window_ms`, and how many times the key's
/// average rate over its whole span that is, when it is a burst.
pub(crate) fn burst(ts: &[i64], th: &Thresholds) -> Option<(usize, f64)> {
    let w = th.timing_burst_window_ms.max(1);
    let mut t = ts.to_vec();
    t.sort_unstable();
    let (first, last) = (*t.first()?, *t.last()?);
    let span = last.saturating_sub(first).max(w) as f64;
    let mut best = 0usize;
    let mut lo = 0usize;
    for hi in 0..t.len() {
        while t[hi].saturating_sub(t[lo]) >= w {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    let expected = t.len() as f64 * w as f64 / span;
    let factor = best as f64 / expected.max(1e-9);
    (best >= th.timing_burst_min_calls && factor >= th.timing_burst_factor).then_some((best, factor))
}

fn human_interval(ms: f64) -> (String, String) {
    let s = ms / 1000.0;
    if s < 120.0 {
        (format!("{s:.1} 秒"), format!("{s:.1} s"))
    } else if s < 7200.0 {
        (format!("{:.1} 分钟", s / 60.0), format!("{:.1} min", s / 60.0))
    } else {
        (format!("{:.1} 小时", s / 3600.0), format!("{:.1} h", s / 3600.0))
    }
}

pub(crate) fn detect(ix: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in &ix.input.timings {
        if t.timestamps_ms.len() < th.timing_min_calls.max(3) {
            continue;
        }
        let Some((cv, mean)) = interval_cv(&t.timestamps_ms) else {
            continue;
        };
        let regular = cv <= th.timing_max_cv;
        let burst = if regular { None } else { burst(&t.timestamps_ms, th) };
        if !regular && burst.is_none() {
            continue;
        }
        let p = ix.party_index(&t.party.0);
        let s = t.skill.as_ref().and_then(|s| ix.skill_index(&s.0));
        let edge = match (p, s) {
            (Some(p), Some(s)) => {
                let i = ix.edges.partition_point(|e| (e.inv, e.skill) < (p, s));
                ix.edges.get(i).filter(|e| e.inv == p && e.skill == s).copied()
            }
            _ => None,
        };
        let mut parties = vec![t.party.clone()];
        let mut evidence = Vec::new();
        if let (Some(e), Some(s)) = (edge, s) {
            let publ = ix.skill_pub[s as usize];
            if publ != u32::MAX {
                parties.push(ix.pid(publ));
                evidence.push((t.party.clone(), ix.pid(publ), e.calls, e.fen));
            }
        }
        let fen = edge.map(|e| e.fen).unwrap_or(0);
        let (iv_zh, iv_en) = human_interval(mean);
        let (on_zh, on_en) = match &t.skill {
            Some(s) => (format!(" 对技能 {s} 的"), format!(" to skill {s}")),
            None => (String::new(), String::new()),
        };
        let (amt_zh, amt_en) = if edge.is_some() {
            (format!("，涉及金额 {}", yuan(fen)), format!("; amount at stake {}", yuan(fen)))
        } else {
            (String::new(), String::new())
        };
        if let Some((in_window, factor)) = burst {
            let n = t.timestamps_ms.len();
            let (w_zh, w_en) = human_interval(th.timing_burst_window_ms as f64);
            out.push(Finding {
                detector: Detector::Timing,
                parties,
                skills: t.skill.iter().cloned().collect(),
                score: 1.0 - 1.0 / factor.max(1.0).sqrt(),
                amount_at_stake_fen: fen,
                explanation_zh: format!(
                    "{} 的密钥 {}{on_zh} {n} 次调用中有 {in_window} 次集中在 {w_zh}之内，是该密钥平均速率的 {factor:.0} 倍：像是为凑用量而突击调用{amt_zh}。",
                    t.party, t.key
                ),
                explanation_en: format!(
                    "Of the {n} calls{on_en} by key {} of {}, {in_window} fall within {w_en}, {factor:.0} times the key's average rate: this looks like a burst to inflate usage{amt_en}.",
                    t.key, t.party
                ),
                evidence,
            });
            continue;
        }
        out.push(Finding {
            detector: Detector::Timing,
            parties,
            skills: t.skill.iter().cloned().collect(),
            score: 1.0 - cv,
            amount_at_stake_fen: fen,
            explanation_zh: format!(
                "{} 的密钥 {}{on_zh} {} 次调用间隔几乎恒定：平均每 {iv_zh}一次，间隔的变异系数仅 {:.3}（人工或正常业务流量通常在 1 左右），像是定时脚本{amt_zh}。",
                t.party,
                t.key,
                t.timestamps_ms.len(),
                cv
            ),
            explanation_en: format!(
                "The {} calls{on_en} by key {} of {} come at almost constant intervals: one every {iv_en} on average, with a coefficient of variation of only {:.3} (organic traffic is around 1); this looks like a script on a timer{amt_en}.",
                t.timestamps_ms.len(),
                t.key,
                t.party,
                cv
            ),
            evidence,
        });
    }
    out
}
