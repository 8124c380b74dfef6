//! Fuzzing the parsers of what publishers send (issue 20), bounded so it runs in `cargo test`
//! (`PROPTEST_CASES=100000 cargo test -p opchub-skills fuzz` for a longer run): `SKILL.md`
//! frontmatter, Agent Skill zips, OpenAPI documents (JSON or YAML, with the nesting pre-scan),
//! publisher URLs and the content scans. On any input each returns a value or a finding with a
//! code — never a panic — and what it accepts keeps its promises.
#![allow(clippy::unwrap_used, clippy::panic)]

use crate::{manifest, net, openapi, package, scan};
use proptest::prelude::*;

/// Text that is mostly YAML/JSON/Markdown punctuation, so the parsers get past their first byte.
fn yamlish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("---\n".to_string()),
            Just("name: ".to_string()),
            Just("description: ".to_string()),
            Just("paths:\n".to_string()),
            Just("openapi: 3.0.0\n".to_string()),
            Just("  /x:\n    get:\n      operationId: op\n".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("&a ".to_string()),
            Just("*a ".to_string()),
            Just("<<: *a\n".to_string()),
            Just("- ".to_string()),
            Just("\n".to_string()),
            "[a-z0-9 :\"'#|>-]{0,8}",
            any::<String>(),
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

/// The bounded budget of a `cargo test` run, or `PROPTEST_CASES` for a longer one.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn skill_md_never_panics_and_an_accepted_one_has_a_name(text in yamlish()) {
        if let Ok((m, _body)) = manifest::parse(&text) {
            prop_assert!(!m.name.trim().is_empty());
        }
    }

    #[test]
    fn openapi_never_panics(text in yamlish()) {
        let _ = openapi::parse(&text, &[]);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing(depth in 100usize..20_000, open in prop_oneof![Just('['), Just('{')]) {
        let close = if open == '[' { ']' } else { '}' };
        let text = format!("paths: {}{}", open.to_string().repeat(depth), close.to_string().repeat(depth));
        let e = openapi::parse(&text, &[]).err().map(|f| f.code);
        prop_assert!(matches!(e.as_deref(), Some("openapi_too_deep" | "openapi_too_complex" | "openapi_unparseable")), "{e:?}");
    }

    #[test]
    fn any_bytes_as_a_package_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = package::inspect(&bytes, package::Limits::default());
    }

    #[test]
    fn an_accepted_package_never_names_a_path_outside_its_folder(
        names in proptest::collection::vec("(\\.\\./|/|[a-z]{1,4}/|\\\\|C:|assets/){0,3}[a-zA-Z0-9._-]{1,8}", 0..6),
        body in "[a-z ]{0,40}",
    ) {
        let md = format!("---\nname: fuzz-skill\ndescription: A fuzzed skill for tests.\n---\n{body}\n");
        let mut entries: Vec<(&str, &[u8])> = vec![("SKILL.md", md.as_bytes())];
        for n in &names {
            entries.push((n.as_str(), b"x"));
        }
        let zip = package::build_zip(&entries);
        if let Ok(p) = package::inspect(&zip, package::Limits::default()) {
            for f in &p.files {
                prop_assert!(!f.starts_with('/') && !f.contains('\\') && !f.split('/').any(|s| s == ".."), "{f}");
            }
        }
    }

    #[test]
    fn publisher_urls_never_panic_and_accepted_hosts_are_plain(raw in prop_oneof![
        any::<String>(),
        "(https?|ftp|file)://[a-z0-9@:.\\[\\]%/-]{0,30}",
    ]) {
        if let Ok((host, _port)) = net::parse_upstream(&raw) {
            prop_assert!(!host.is_empty() && !host.contains('@') && !host.contains('/') && !host.contains(char::is_whitespace), "{host}");
        }
    }

    #[test]
    fn content_scans_never_panic(text in any::<String>()) {
        let _ = scan::secrets(&text, "x");
        let _ = scan::injection(&text, "x");
        let _ = scan::dangerous(&text, "x");
    }
}
