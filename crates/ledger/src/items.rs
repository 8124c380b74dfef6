//! Compute and data price items (M2.2): what a unit of an item is, and the exact integer
//! arithmetic that turns a metered quantity into list and charged amounts in fen.
//!
//! Rounding rule (one rule for every item, as for tokens): `amount = ⌊(quantity × price +
//! divisor / 2) / divisor⌋` in 128-bit integers — round half up to the fen, never floating
//! point — where the divisor is the number of metered units in one priced unit:
//!
//! | item unit  | ledger kind / unit             | divisor                       |
//! |------------|--------------------------------|-------------------------------|
//! | `gpu_hour` | `compute.gpu_second` / seconds | 3,600                         |
//! | `gb`       | `data.byte` / bytes            | 1,000,000,000 (1 GB = 10⁹ B)  |
//! | `dataset`  | `data.byte` / bytes            | the dataset's size in bytes   |
//!
//! A dataset priced per dataset is paid once per OPC and dataset version: bytes delivered count
//! towards it until the dataset's size is reached ([`dataset_charge`]), so a download broken off
//! halfway pays half and the rest is paid when the rest is fetched; after that, downloads of
//! the same version cost nothing.

/// The units an item may be priced in.
pub const UNITS: &[&str] = &["gpu_hour", "gb", "dataset"];

/// Bytes in one GB (SI, 10⁹).
pub const BYTES_PER_GB: i64 = 1_000_000_000;
/// GPU-seconds in one GPU-hour.
pub const SECONDS_PER_HOUR: i64 = 3_600;
/// Largest unit price accepted (fen): ¥1,000,000 per unit.
pub const MAX_UNIT_PRICE_FEN: i64 = 100_000_000;

/// The ledger kind an item's usage is metered as: compute or data.
pub fn kind_of(unit: &str) -> Option<&'static str> {
    match unit {
        "gpu_hour" => Some("compute.gpu_second"),
        "gb" | "dataset" => Some("data.byte"),
        _ => None,
    }
}

/// `⌊(quantity × price + divisor/2) / divisor⌋`; `None` for a non-positive divisor, a negative
/// input or a result beyond `i64`.
pub fn round_half_up(quantity: i64, price_fen: i64, divisor: i64) -> Option<i64> {
    if divisor <= 0 || quantity < 0 || price_fen < 0 {
        return None;
    }
    let v = (i128::from(quantity) * i128::from(price_fen) + i128::from(divisor) / 2) / i128::from(divisor);
    i64::try_from(v).ok()
}

/// The amount of `quantity` metered units (GPU-seconds or bytes) of an item priced per
/// `gpu_hour` or per `gb`. Per-dataset items are priced by [`dataset_charge`].
pub fn amount(unit: &str, quantity: i64, price_fen: i64) -> Option<i64> {
    match unit {
        "gpu_hour" => round_half_up(quantity, price_fen, SECONDS_PER_HOUR),
        "gb" => round_half_up(quantity, price_fen, BYTES_PER_GB),
        _ => None,
    }
}

/// [`amount`] exactly: the amount in fen rounded half up and what that rounding left, in
/// millionths of a fen (the exact value rounded half up to a millionth of a fen), so usage
/// worth less than a fen an event adds up exactly and is rounded once per line (issue 17
/// item 6).
pub fn exact_amount(unit: &str, quantity: i64, price_fen: i64) -> Option<opchub_domain::money::ExactFen> {
    let divisor = match unit {
        "gpu_hour" => SECONDS_PER_HOUR,
        "gb" => BYTES_PER_GB,
        _ => return None,
    };
    if quantity < 0 || price_fen < 0 {
        return None;
    }
    let micro = i128::from(quantity) * i128::from(price_fen) * i128::from(opchub_domain::money::MICRO_PER_FEN);
    let d = i128::from(divisor);
    Some(opchub_domain::money::ExactFen::from_micro((micro + d / 2) / d))
}

/// What `sent` more bytes of a per-dataset item cost when `billed` bytes of the same dataset
/// version (of `size` bytes) were already counted for this OPC: the price of the cumulative
/// bytes minus the price of those before, each rounded by the rule above and capped at the
/// size. The charges of one OPC for one version therefore add up to exactly the unit price,
/// however the file was fetched. Returns (bytes counted now, amount).
pub fn dataset_charge(size: i64, billed: i64, sent: i64, price_fen: i64) -> Option<(i64, i64)> {
    if size <= 0 {
        return Some((0, 0));
    }
    let billed = billed.clamp(0, size);
    let counted = sent.max(0).min(size - billed);
    let before = round_half_up(billed, price_fen, size)?;
    let after = round_half_up(billed + counted, price_fen, size)?;
    Some((counted, after - before))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exact_amounts_keep_what_a_fen_rounding_leaves() {
        // One GPU-second at ¥1.00 an hour: 0.027 777… fen, 27,778 millionths.
        let e = exact_amount("gpu_hour", 1, 100).unwrap();
        assert_eq!((e.fen, e.sub_micro), (0, 27_778));
        // 36 of them are one fen exactly (to 8 millionths), where rounding each gives 0.
        assert_eq!(opchub_domain::money::round_micro(36 * e.micro()), 1);
        assert_eq!(amount("gpu_hour", 1, 100), Some(0));
        // The fen part is the same half-up rounding as `amount`.
        for (q, p) in [(1_800, 1), (5_400, 3), (3_600, 10_800), (1, 99)] {
            assert_eq!(
                Some(exact_amount("gpu_hour", q, p).unwrap().fen),
                amount("gpu_hour", q, p),
                "{q} × {p}"
            );
        }
        assert_eq!(exact_amount("gb", 500_000_000, 51).unwrap().micro(), 25_500_000);
        assert!(exact_amount("dataset", 1, 1).is_none());
    }

    #[test]
    fn gpu_hours_and_gigabytes_round_half_up_to_the_fen() {
        // ¥108 per GPU-hour = 10,800 fen: 3 fen per second exactly.
        assert_eq!(amount("gpu_hour", 3600, 10_800), Some(10_800));
        assert_eq!(amount("gpu_hour", 7, 10_800), Some(21));
        // 1,000 fen per hour: 1 s = 0.2777… → 0; 2 s = 0.555… → 1; 9 s = 2.5 → 3 (half up).
        assert_eq!(amount("gpu_hour", 1, 1_000), Some(0));
        assert_eq!(amount("gpu_hour", 2, 1_000), Some(1));
        assert_eq!(amount("gpu_hour", 9, 1_000), Some(3));
        // 50 fen per GB: 10⁹ B = 50; 10⁷ B = 0.5 → 1; 9,999,999 B = 0.4999… → 0.
        assert_eq!(amount("gb", BYTES_PER_GB, 50), Some(50));
        assert_eq!(amount("gb", 10_000_000, 50), Some(1));
        assert_eq!(amount("gb", 9_999_999, 50), Some(0));
        assert_eq!(amount("dataset", 1, 50), None);
        assert_eq!(amount("gpu_hour", -1, 50), None);
        // No overflow inside: 128-bit products; a result beyond i64 is None, not wrapped.
        assert_eq!(amount("gpu_hour", 1_000_000_000_000_000, 10_800), Some(3_000_000_000_000_000));
        assert_eq!(amount("gpu_hour", 1_000_000_000_000_000, MAX_UNIT_PRICE_FEN), None);
    }

    #[test]
    fn a_dataset_is_paid_once_however_it_is_fetched() {
        let size = 1_000;
        // In three uneven pieces, then again: exactly the price, then nothing.
        let mut billed = 0;
        let mut total = 0;
        for sent in [333, 333, 334, 1_000] {
            let (counted, fen) = dataset_charge(size, billed, sent, 999).unwrap();
            billed += counted;
            total += fen;
        }
        assert_eq!((billed, total), (1_000, 999));
        // Half, broken off: half the price (rounded half up).
        assert_eq!(dataset_charge(size, 0, 500, 999), Some((500, 500)));
        assert_eq!(dataset_charge(size, 1_000, 10, 999), Some((0, 0)));
        assert_eq!(dataset_charge(0, 0, 10, 999), Some((0, 0)));
    }

    #[test]
    fn kinds() {
        assert_eq!(kind_of("gpu_hour"), Some("compute.gpu_second"));
        assert_eq!(kind_of("gb"), Some("data.byte"));
        assert_eq!(kind_of("dataset"), Some("data.byte"));
        assert_eq!(kind_of("token"), None);
    }
}
