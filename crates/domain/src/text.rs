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
