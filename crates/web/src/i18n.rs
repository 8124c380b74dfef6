//! Message catalogs: Chinese (default) and English, flat `key = "text"` TOML files under
//! `i18n/`. The request's language is set per request (cookie `lang`, else Accept-Language)
//! in a task-local so that errors and pages use it without threading it everywhere.

use std::collections::HashMap;
use std::sync::OnceLock;

pub const LANGS: [&str; 2] = ["zh", "en"];

static CATALOGS: OnceLock<HashMap<&'static str, HashMap<String, String>>> = OnceLock::new();

fn parse(src: &str) -> HashMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut HashMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, v, out);
                }
            }
            toml::Value::String(s) => {
                out.insert(prefix.to_string(), s.clone());
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = HashMap::new();
    match src.parse::<toml::Table>() {
        Ok(t) => walk("", &toml::Value::Table(t), &mut out),
        Err(e) => tracing::error!(error = %e, "message catalog does not parse"),
    }
    out
}

fn catalogs() -> &'static HashMap<&'static str, HashMap<String, String>> {
    CATALOGS.get_or_init(|| {
        let mut m = HashMap::new();
        m.insert("zh", parse(include_str!("../i18n/zh.toml")));
        m.insert("en", parse(include_str!("../i18n/en.toml")));
        m
    })
}

/// The text for `key` in `lang`; falls back to Chinese, then to the key itself.
pub fn text(lang: &str, key: &str) -> String {
    let c = catalogs();
    c.get(lang)
        .and_then(|m| m.get(key))
        .or_else(|| c.get("zh").and_then(|m| m.get(key)))
        .cloned()
        .unwrap_or_else(|| key.to_string())
}

pub fn has(lang: &str, key: &str) -> bool {
    catalogs().get(lang).is_some_and(|m| m.contains_key(key))
}

pub fn keys(lang: &str) -> Vec<String> {
    catalogs().get(lang).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

tokio::task_local! {
    static LANG: String;
}

pub async fn scope<F: std::future::Future>(lang: String, f: F) -> F::Output {
    LANG.scope(lang, f).await
}

pub fn current_lang() -> String {
    LANG.try_with(|l| l.clone()).unwrap_or_else(|_| "zh".to_string())
}

/// Picks the language from the `lang` cookie, then Accept-Language; Chinese by default.
pub fn negotiate(cookie_lang: Option<&str>, accept_language: Option<&str>) -> String {
    if let Some(l) = cookie_lang.filter(|l| LANGS.contains(l)) {
        return l.to_string();
    }
    if let Some(al) = accept_language {
        let first = al.split(',').next().unwrap_or("").trim().to_ascii_lowercase();
        if first.starts_with("en") {
            return "en".into();
        }
    }
    "zh".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogs_have_the_same_keys() {
        let mut zh = keys("zh");
        let mut en = keys("en");
        zh.sort();
        en.sort();
        let missing_en: Vec<_> = zh.iter().filter(|k| !en.contains(k)).collect();
        let missing_zh: Vec<_> = en.iter().filter(|k| !zh.contains(k)).collect();
        assert!(missing_en.is_empty(), "keys missing in en.toml: {missing_en:?}");
        assert!(missing_zh.is_empty(), "keys missing in zh.toml: {missing_zh:?}");
        assert!(zh.len() > 50);
    }

    #[test]
    fn language_negotiation() {
        assert_eq!(negotiate(None, None), "zh");
        assert_eq!(negotiate(None, Some("en-US,en;q=0.9")), "en");
        assert_eq!(negotiate(Some("zh"), Some("en-US")), "zh");
        assert_eq!(negotiate(Some("fr"), None), "zh");
    }
}
