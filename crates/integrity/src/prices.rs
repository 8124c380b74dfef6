//! Price jumps, and paid volume that multiplies after a price rise (see the crate docs).

use crate::civil::{daily, date, price_series, window};
use crate::index::Index;
use crate::text::yuan;
use crate::{Detector, Finding, PartyId, SkillId, Thresholds};

/// The longest window the volume detector looks at (ten years).
const MAX_WINDOW_DAYS: i64 = 3_660;

fn price_zh(fen: i64) -> String {
    if fen == 0 {
        "免费".to_string()
    } else {
        yuan(fen)
    }
}

fn price_en(fen: i64) -> String {
    if fen == 0 {
        "free".to_string()
    } else {
        yuan(fen)
    }
}

fn times(old: i64, new: i64) -> (String, String) {
    if old > 0 {
        let x = new as f64 / old as f64;
        (format!("（{x:.1} 倍）"), format!(" ({x:.1}×)"))
    } else {
        (String::new(), String::new())
    }
}

pub(crate) fn detect_jumps(ix: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    let series = price_series(ix.input);
    if series.is_empty() {
        return Vec::new();
    }
    let daily = daily(ix.input);
    let mut out = Vec::new();
    for ((skill, publ), pts) in &series {
        let Some(days) = daily.get(publ) else { continue };
        for (i, w) in pts.windows(2).enumerate() {
            let ((_, old), (day, new)) = (w[0], w[1]);
            let jump = new > old
                && if old > 0 {
                    new as f64 >= th.price_jump_factor * old as f64 && new.saturating_sub(old) >= th.price_jump_min_fen
                } else {
                    new >= th.price_jump_min_fen
                };
            if !jump {
                continue;
            }
            let next = pts.get(i + 2).map(|p| p.0);
            let got = window(days, day, next.unwrap_or(i64::MAX));
            if got.calls == 0 {
                continue;
            }
            let (x_zh, x_en) = times(old, new);
            let (until_zh, until_en) = match next {
                Some(n) => (
                    format!("（到 {} 下一次调价为止）", date(n)),
                    format!(" (until the next price change on {})", date(n)),
                ),
                None => (String::new(), String::new()),
            };
            out.push(Finding {
                detector: Detector::PriceJump,
                parties: vec![PartyId::from(*publ)],
                skills: vec![SkillId::from(*skill)],
                score: if old > 0 { 1.0 - old as f64 / new as f64 } else { 1.0 },
                amount_at_stake_fen: got.fen,
                explanation_zh: format!(
                    "发布方 {publ} 的技能 {skill} 于 {} 把单次调用价格从{}提到 {}{x_zh}；此后{until_zh}该发布方仍收到 {} 次付费调用、{}。大幅提价后仍有人按高价付费调用，可能是自己人按新价格刷量。",
                    date(day),
                    if old == 0 { "免费".to_string() } else { format!(" {} ", price_zh(old)) },
                    yuan(new),
                    got.calls,
                    yuan(got.fen)
                ),
                explanation_en: format!(
                    "On {} skill {skill} of {publ} went from {} to {} a call{x_en}; from then on{until_en} the publisher still received {} paid calls, {}. Paid calls at a price this much higher suggest insiders paying themselves at the new price.",
                    date(day),
                    price_en(old),
                    yuan(new),
                    got.calls,
                    yuan(got.fen)
                ),
                evidence: vec![(PartyId::from(*publ), PartyId::from(*publ), got.calls, got.fen)],
            });
        }
    }
    out
}

pub(crate) fn detect_volume(ix: &Index<'_>, th: &Thresholds) -> Vec<Finding> {
    let series = price_series(ix.input);
    if series.is_empty() {
        return Vec::new();
    }
    let daily = daily(ix.input);
    let w = th.price_window_days.clamp(1, MAX_WINDOW_DAYS);
    let mut out = Vec::new();
    for ((skill, publ), pts) in &series {
        let Some(days) = daily.get(publ) else { continue };
        for p in pts.windows(2) {
            let ((_, old), (day, new)) = (p[0], p[1]);
            if new <= old {
                continue;
            }
            let before = window(days, day - w, day);
            let after = window(days, day, day + w);
            let base = before.calls.max(1) as f64;
            let factor = after.calls as f64 / base;
            if after.calls < th.price_volume_min_calls.max(1) || factor < th.price_volume_factor {
                continue;
            }
            let (x_zh, x_en) = times(old, new);
            out.push(Finding {
                detector: Detector::VolumeAfterRise,
                parties: vec![PartyId::from(*publ)],
                skills: vec![SkillId::from(*skill)],
                score: 1.0 - 1.0 / factor.max(1.0),
                amount_at_stake_fen: after.fen,
                explanation_zh: format!(
                    "发布方 {publ} 的技能 {skill} 于 {} 从{}涨价到 {}{x_zh}，涨价后 {w} 天内该发布方收到 {} 次付费调用、{}，是涨价前 {w} 天（{} 次）的 {factor:.1} 倍。正常需求在涨价后持平或下降，不会成倍增加。",
                    date(day),
                    if old == 0 { "免费".to_string() } else { format!(" {} ", price_zh(old)) },
                    yuan(new),
                    after.calls,
                    yuan(after.fen),
                    before.calls
                ),
                explanation_en: format!(
                    "On {} skill {skill} of {publ} went up from {} to {} a call{x_en}; in the {w} days from then the publisher received {} paid calls, {}, {factor:.1}× the {} calls of the {w} days before. Organic demand holds or falls after a price rise; it does not multiply.",
                    date(day),
                    price_en(old),
                    yuan(new),
                    after.calls,
                    yuan(after.fen),
                    before.calls
                ),
                evidence: vec![(PartyId::from(*publ), PartyId::from(*publ), after.calls, after.fen)],
            });
        }
    }
    out
}
