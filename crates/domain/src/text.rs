//! Text for search and matching: Chinese is segmented with jieba (search mode, so long words
//! also yield their parts), Latin text is split on non-alphanumerics and lower-cased. The
//! Skill Store search and the demand board's matching use the same tokens, so a query and
//! the text it should find are always cut the same way.

use std::sync::LazyLock;

static JIEBA: LazyLock<jieba_rs::Jieba> = LazyLock::new(jieba_rs::Jieba::new);

/// Loads the dictionary now (≈0.4 s) instead of on the first search.
pub fn warm_up() {
    LazyLock::force(&JIEBA);
}

/// Search tokens of `text`: lower-cased, punctuation and whitespace dropped, in order of
/// appearance (duplicates kept, so callers can count term frequency).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in JIEBA.cut_for_search(text, true) {
        let w = word.trim();
        if w.is_empty() || !w.chars().any(char::is_alphanumeric) {
            continue;
        }
        if w.is_ascii() {
            // jieba keeps Latin runs whole ("skill-store"); split on anything not alphanumeric.
            out.extend(
                w.split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|p| !p.is_empty())
                    .map(str::to_ascii_lowercase),
            );
        } else {
            out.push(w.to_lowercase());
        }
    }
    out
}

/// Distinct tokens, sorted (for tag-like set comparisons and index keys).
pub fn token_set(text: &str) -> std::collections::BTreeSet<String> {
    tokens(text).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_segmented_and_long_words_yield_parts() {
        let t = tokens("发票助手：智能体开发，帮你自动报销");
        assert!(t.contains(&"发票".to_string()), "{t:?}");
        assert!(t.contains(&"助手".to_string()), "{t:?}");
        assert!(t.contains(&"智能".to_string()), "{t:?}");
        assert!(!t.iter().any(|w| w == "：" || w == "，"), "{t:?}");
    }

    #[test]
    fn latin_is_lowercased_and_split() {
        assert_eq!(tokens("Invoice-Helper for PDF"), vec!["invoice", "helper", "for", "pdf"]);
    }

    #[test]
    fn mixed_text_keeps_both() {
        let s = token_set("AIGC 视频生成 Agent");
        assert!(s.contains("aigc") && s.contains("agent") && s.contains("视频"), "{s:?}");
    }
}

/// The matching key of a registered address (issue 18 item 1: two parties registered at one
/// address are related): full-width letters and digits made half-width, Latin lower-cased,
/// everything but letters and digits (spaces, punctuation, `#`, `-`) dropped, and the leading
/// `中国` / `北京市` / `北京` left out, since every address here is in Beijing. So
/// `北京市丰台区汽车博物馆东路 1 号院 3 号楼 201` and `丰台区汽车博物馆东路1号院3号楼201`
/// compare equal; two rooms of one building do not.
pub fn address_key(address: &str) -> String {
    let key: String = address
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let mut rest = key.as_str();
    for prefix in ["中国", "北京市", "北京"] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    rest.to_string()
}

#[cfg(test)]
mod address_tests {
    use super::address_key;

    #[test]
    fn one_address_written_two_ways_has_one_key_and_two_rooms_do_not() {
        let a = address_key("北京市丰台区汽车博物馆东路 1 号院 3 号楼 201");
        assert_eq!(a, "丰台区汽车博物馆东路1号院3号楼201");
        assert_eq!(
            address_key("中国北京丰台区汽车博物馆东路１号院３号楼２０１"),
            a,
            "full-width digits"
        );
        assert_eq!(address_key("丰台区汽车博物馆东路1号院-3号楼#201"), a, "punctuation");
        assert_ne!(address_key("丰台区汽车博物馆东路1号院3号楼202"), a);
        assert_eq!(address_key("Room 5, ABC Tower"), "room5abctower");
        assert_eq!(address_key(" ，。 "), "");
    }
}
