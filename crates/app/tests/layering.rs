#![allow(clippy::unwrap_used)]
//! The layers, held by machine (the README's "How a request flows"):
//! - the application crate knows no HTTP framework, no template engine and no front end: a use
//!   case that reached for `axum` or `minijinja` fails here;
//! - the web crate calls the store only where it builds its state (`lib.rs`): a handler that
//!   reads or writes the database itself, instead of calling an app function, fails here (the
//!   store's row types may still be named: they are what the use cases return);
//! - the CLI uses the web crate only to serve;
//! - the gateway answers with its own reply and error types, never a finished HTTP response:
//!   it depends on no HTTP server framework (`opchub_web` writes the OpenAI-shaped answer).

use std::path::{Path, PathBuf};

/// Crates a use case may not depend on or import: HTTP, templates, front ends.
const FORBIDDEN: &[&str] = &[
    "axum",
    "http",
    "hyper",
    "tower",
    "tower_http",
    "minijinja",
    "opchub_web",
    "opchub_gateway",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The forbidden crates a source text names, in `use` lines or paths (`axum::…`).
fn violations(text: &str) -> Vec<&'static str> {
    names_used(text, FORBIDDEN)
}

/// Which of `names` a source text names as a path's first segment.
fn names_used(text: &str, names: &[&'static str]) -> Vec<&'static str> {
    names
        .iter()
        .copied()
        .filter(|name| {
            text.lines().map(str::trim_start).filter(|l| !l.starts_with("//")).any(|l| {
                l.match_indices(&format!("{name}::")).any(|(i, _)| {
                    // A whole path segment: not `opchub_http::` or `my_axum::`.
                    i == 0 || !l[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            })
        })
        .collect()
}

/// The forbidden crates a Cargo.toml's dependency tables name.
fn dependency_violations(manifest: &str) -> Vec<String> {
    dependencies_named(manifest, FORBIDDEN)
}

/// What the gateway may not depend on: the server side of HTTP (it is an HTTP *client* of the
/// upstream channels through reqwest, whose `http` types it may use).
const SERVER_FRAMEWORKS: &[&str] = &["axum", "hyper", "tower", "tower_http", "minijinja", "opchub_web"];

fn dependencies_named(manifest: &str, names: &[&str]) -> Vec<String> {
    let doc: toml::Table = manifest.parse().unwrap();
    ["dependencies", "dev-dependencies"]
        .iter()
        .filter_map(|t| doc.get(*t).and_then(|d| d.as_table()))
        .flat_map(|t| t.keys().cloned())
        .filter(|k| names.contains(&k.replace('-', "_").as_str()))
        .collect()
}

/// The server frameworks a source text names.
fn server_framework_uses(text: &str) -> Vec<&'static str> {
    names_used(text, SERVER_FRAMEWORKS)
}

#[test]
fn the_gateway_returns_its_own_types_not_http_responses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("gateway");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert_eq!(
        dependencies_named(&manifest, SERVER_FRAMEWORKS),
        Vec::<String>::new(),
        "crates/gateway/Cargo.toml"
    );
    let found = reported("gateway", |text| {
        server_framework_uses(text).iter().map(|v| format!("uses {v}")).collect()
    });
    assert_eq!(found, Vec::<String>::new());
    // A deliberate violation is caught.
    assert_eq!(server_framework_uses("use axum::response::Response;"), vec!["axum"]);
    assert!(server_framework_uses("use reqwest::header::HeaderValue;").is_empty());
}

#[test]
fn the_application_layer_depends_on_no_http_and_no_templates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert_eq!(dependency_violations(&manifest), Vec::<String>::new(), "crates/app/Cargo.toml");
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    assert!(files.len() > 5, "the check reads the crate's sources");
    let found: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            violations(&text).into_iter().map(move |v| format!("{} uses {v}", f.display()))
        })
        .collect();
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn a_deliberate_violation_is_caught() {
    assert_eq!(violations("use axum::http::StatusCode;"), vec!["axum", "http"]);
    assert_eq!(violations("    let t = minijinja::Environment::new();"), vec!["minijinja"]);
    assert_eq!(violations("fn f() -> opchub_web::error::ApiError { todo!() }"), vec!["opchub_web"]);
    // Comments, and names that merely end alike, are not imports.
    assert!(violations("// axum::Router is the web crate's").is_empty());
    assert!(violations("use opchub_http::x;").is_empty());
    assert_eq!(
        dependency_violations("[dependencies]\naxum = \"0.8\"\nserde = \"1\"\n[dev-dependencies]\ntower-http = \"0.6\"\n"),
        vec!["axum".to_string(), "tower-http".to_string()]
    );
}

/// Lines of a web source that call the store directly (`s.store.…`, `state.store.…`).
fn store_calls(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//"))
        .filter(|l| l.contains(".store.") || l.contains("store()."))
        .map(str::to_string)
        .collect()
}

/// What the CLI names of the web crate beyond its server (`serve`, `AppState`, `WebConfig`,
/// `metrics_handle`).
fn web_uses_beyond_serving(text: &str) -> Vec<String> {
    const SERVING: &[&str] = &["serve", "AppState", "WebConfig", "metrics_handle"];
    text.match_indices("opchub_web::")
        .filter_map(|(i, m)| {
            let rest = &text[i + m.len()..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            (!SERVING.contains(&name.as_str())).then(|| format!("opchub_web::{name}"))
        })
        .collect()
}

fn crate_sources(name: &str) -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(!files.is_empty(), "read crates/{name}/src");
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect()
}

/// What `check` reports in each source of crate `name`, each line prefixed with its file.
fn reported(name: &str, check: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    crate_sources(name)
        .into_iter()
        .flat_map(|(f, text)| {
            check(&text)
                .into_iter()
                .map(move |v| format!("{}: {v}", f.display()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn web_handlers_call_the_app_not_the_store() {
    let found: Vec<String> = crate_sources("web")
        .into_iter()
        .filter(|(f, _)| !f.ends_with("src/lib.rs"))
        .flat_map(|(f, text)| store_calls(&text).into_iter().map(move |l| format!("{}: {l}", f.display())))
        .collect();
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn the_cli_uses_web_only_to_serve() {
    assert_eq!(reported("opchub", web_uses_beyond_serving), Vec::<String>::new());
}

#[test]
fn deliberate_violations_of_the_web_and_cli_rules_are_caught() {
    assert_eq!(store_calls("    let opc = s.store.opc(&id).await?;").len(), 1);
    assert!(store_calls("    let opc = opchub_app::registry::opc(&s, &id).await?;").is_empty());
    assert_eq!(
        web_uses_beyond_serving("use opchub_web::api::skills::publish_for;\nopchub_web::serve(l, s, d)"),
        vec!["opchub_web::api".to_string()]
    );
}
