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

    /// The keys a template looks up literally (`t('registry.register.title')`).
    fn literal_keys(template: &str) -> Vec<String> {
        let mut out = vec![];
        for quote in ['\'', '"'] {
            for (i, _) in template.match_indices(&format!("t({quote}")) {
                // `t(` as a call of its own, not the end of another name (`set(`, `alert(`).
                if template[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &template[i + 3..];
                let Some(end) = rest.find(quote) else { continue };
                let (key, after) = (&rest[..end], &rest[end + 1..]);
                // Only a whole literal (`t('a.b')`), not a prefix joined to a value (`t('a.' ~ x)`).
                if after.trim_start().starts_with(')') && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                    out.push(key.to_string());
                }
            }
        }
        out
    }

    fn templates(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                templates(&path, out);
            } else if path.extension().is_some_and(|e| e == "html") {
                out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }

    /// Every text a page shows by a literal key is in both catalogs: a renamed or misspelt key
    /// would otherwise show the key itself to the reader.
    #[test]
    fn every_key_a_template_names_is_in_both_catalogs() {
        let mut files = vec![];
        templates(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"), &mut files);
        let mut checked = 0;
        let mut missing = vec![];
        for (file, text) in &files {
            for key in literal_keys(text) {
                checked += 1;
                for lang in ["zh", "en"] {
                    if !has(lang, &key) {
                        missing.push(format!("{file}: {lang} {key}"));
                    }
                }
            }
        }
        assert!(checked > 1000, "the check reads the templates' keys ({checked})");
        assert_eq!(missing, Vec::<String>::new());
        // A key built from a value is not read as a literal; the old flat names are gone.
        assert_eq!(
            literal_keys("{{ t('registry.register.title') }} {{ t('status.' ~ s) }}"),
            vec!["registry.register.title"]
        );
        assert!(!has("zh", "register.title"), "the registry's pages are nested under registry");
    }

    /// The menus' labels and the workbench's to-dos and deadlines (keys built from values) are
    /// in both catalogs.
    #[test]
    fn every_menu_and_workbench_label_is_in_both_catalogs() {
        let mut keys: Vec<String> = crate::nav::catalog_keys().into_iter().map(String::from).collect();
        for k in opchub_app::workbench::TODO_KEYS {
            keys.push(format!("workbench.todo.{k}"));
        }
        for k in opchub_app::workbench::DEADLINE_KEYS {
            keys.push(format!("workbench.deadline.{k}"));
        }
        let missing: Vec<_> = keys
            .iter()
            .flat_map(|k| {
                ["zh", "en"]
                    .into_iter()
                    .filter(move |l| !has(l, k))
                    .map(move |l| format!("{l} {k}"))
            })
            .collect();
        assert_eq!(missing, Vec::<String>::new());
    }
}
