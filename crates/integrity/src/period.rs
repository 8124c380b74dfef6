//! Period-end spikes: a publisher's paid calls jumping in the last days of a month, above all
//! the December year-end (see the crate docs).

use crate::civil::{daily, date, month_end, window, Day};
use crate::index::Index;
use crate::text::yuan;
use crate::{Detector, Finding, PartyId, Thresholds};

/// One month end of one publisher that spiked.
struct Spike {
    year: i64,
    month: u32,
    end: i64,
    got: Day,
    factor: f64,
}

pub(crate) fn detect(ix: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    let daily = daily(ix.input);
    let n = th.period_end_days.clamp(1, 28);
    let mut out = Vec::new();
    for (publ, days) in &daily {
        // the months present, and the publisher's other active days (outside every month end)
        let mut months: Vec<(i64, (i64, u32))> = Vec::new();
        let (mut other_days, mut other_calls) = (0u64, 0u64);
        for (&d, v) in days {
            let (end, ym) = month_end(d);
            if months.last().is_none_or(|m| m.1 != ym) {
                months.push((end, ym));
            }
            if d <= end - n && v.calls > 0 {
                other_days += 1;
                other_calls = other_calls.saturating_add(v.calls);
            }
        }
        // Without a single other active day there is nothing to compare with.
        if other_days == 0 {
            continue;
        }
        let mean = other_calls as f64 / other_days as f64;
        let expected = mean * n as f64;
        let mut spikes: Vec<Spike> = Vec::new();
        for &(end, (year, month)) in &months {
            let got = window(days, end - n + 1, end + 1);
            let factor = got.calls as f64 / expected.max(1e-9);
            if got.calls >= th.period_end_min_calls.max(1) && factor >= th.period_end_factor {
                spikes.push(Spike {
                    year,
                    month,
                    end,
                    got,
                    factor,
                });
            }
        }
        // the worst month end: the highest factor, then the most calls, then the earliest
        let Some(worst) = spikes.iter().reduce(|best, s| {
            if s.factor > best.factor || (s.factor == best.factor && s.got.calls > best.got.calls) {
                s
            } else {
                best
            }
        }) else {
            continue;
        };
        let total = spikes.iter().fold(Day::default(), |a, s| Day {
            calls: a.calls.saturating_add(s.got.calls),
            fen: a.fen.saturating_add(s.got.fen),
        });
        let december: Vec<String> = spikes.iter().filter(|s| s.month == 12).map(|s| s.year.to_string()).collect();
        let (more_zh, more_en) = if spikes.len() == 1 {
            if december.is_empty() {
                ("只有这一个月末出现突增".to_string(), "only this month end spiked".to_string())
            } else {
                (
                    format!("这正是 {} 年的年末（补贴按年结算）", worst.year),
                    format!("this is the {} year-end (settlement is yearly)", worst.year),
                )
            }
        } else {
            let (dec_zh, dec_en) = if december.is_empty() {
                (String::new(), String::new())
            } else {
                (
                    format!("，其中包括 {} 年 12 月的年末（补贴按年结算）", december.join("、")),
                    format!(
                        ", among them the December year-end of {} (settlement is yearly)",
                        december.join(", ")
                    ),
                )
            };
            (
                format!(
                    "共有 {} 个月末出现这样的突增，合计 {} 次、{}{dec_zh}",
                    spikes.len(),
                    total.calls,
                    yuan(total.fen)
                ),
                format!(
                    "{} month ends spiked like this, {} calls and {} in all{dec_en}",
                    spikes.len(),
                    total.calls,
                    yuan(total.fen)
                ),
            )
        };
        let (from, to) = (date(worst.end - n + 1), date(worst.end));
        out.push(Finding {
            detector: Detector::PeriodEndSpike,
            parties: vec![PartyId::from(*publ)],
            skills: Vec::new(),
            score: 1.0 - 1.0 / worst.factor.max(1.0),
            amount_at_stake_fen: total.fen,
            explanation_zh: format!(
                "发布方 {publ} 在 {} 年 {} 月的最后 {n} 天（{from} 至 {to}）收到 {} 次付费调用、{}，是平时同样天数的 {:.1} 倍（其他 {other_days} 个有调用的日子日均 {mean:.1} 次）；{more_zh}。期末突增常是为了凑够补贴用量。",
                worst.year,
                worst.month,
                worst.got.calls,
                yuan(worst.got.fen),
                worst.factor
            ),
            explanation_en: format!(
                "In the last {n} days of {}-{:02} ({from} to {to}) publisher {publ} received {} paid calls, {}, {:.1}× its usual for as many days ({mean:.1} a day on its {other_days} other active days); {more_en}. A spike at the end of a period is often usage topped up for the subsidy.",
                worst.year,
                worst.month,
                worst.got.calls,
                yuan(worst.got.fen),
                worst.factor
            ),
            evidence: vec![(PartyId::from(*publ), PartyId::from(*publ), total.calls, total.fen)],
        });
    }
    out
}
