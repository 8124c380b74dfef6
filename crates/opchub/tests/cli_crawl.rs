//! Issue 21, the crawl: with the real binary on demo data, each demo account signs in and
//! follows every link its pages show (same site, GET, breadth first, bounded), and no page it
//! can reach answers an error (status ≥ 400). A link that 404s, a page that 500s for one role,
//! a menu entry that leads a role to a 403 — each is named with the page that linked it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{opchub, serve};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Every demo account (README: the password is `opchub-demo`).
const ACCOUNTS: &[&str] = &[
    "opc",
    "enterprise",
    "operator",
    "platform",
    "specialist",
    "committee",
    "committee2",
    "agency",
    "agency-commerce",
    "agency-finance",
    "agency-hr",
    "agency-fund",
    "finance",
    "auditor",
];
/// Pages read per account at the most (the crawl ends by itself).
const MAX_PAGES: usize = 600;
/// Query variants read per path (`?period=` back through the months, `?leaf_index=` of every
/// event: a few show the page works, all of them would be the whole ledger).
const MAX_VARIANTS: usize = 4;

/// Same-site links of a page (`href="/…"`), without their fragment.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|h| h.starts_with('/') && !h.starts_with("//"))
        .map(|h| h.split('#').next().unwrap_or(h).replace("&amp;", "&"))
        .filter(|h| !h.is_empty())
        .collect()
}

/// Whether following `path` would change the session rather than read a page.
fn leaves_the_crawl(path: &str) -> bool {
    path.starts_with("/logout") || path.starts_with("/lang/")
}

struct Session {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

impl Session {
    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Some((k, v)) = v.to_str().unwrap().split(';').next().and_then(|kv| kv.split_once('=')) {
                self.cookies.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }

    async fn get(&mut self, path: &str) -> (u16, Option<String>, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&r);
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let html = if r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/html"))
        {
            r.text().await.unwrap_or_default()
        } else {
            String::new()
        };
        (status, location, html)
    }

    async fn login(base: &str, username: &str) -> Session {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut s = Session {
            http,
            base: base.to_string(),
            cookies: BTreeMap::new(),
        };
        let (_, _, html) = s.get("/login").await;
        let csrf = html
            .split("name=\"_csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_string();
        let r = s
            .http
            .post(format!("{base}/login"))
            .header(reqwest::header::COOKIE, s.cookie_header())
            .form(&[
                ("_csrf", csrf.as_str()),
                ("next", ""),
                ("username", username),
                ("password", "opchub-demo"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{username} signs in");
        s.keep(&r);
        assert!(s.cookies.contains_key("opchub_session"), "{username} has a session");
        s
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_link_each_demo_account_can_reach_answers_without_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("crawl.db").display());
    let (code, out) = opchub(dir.path(), &db, &["demo"]);
    assert_eq!(code, 0, "{out}");
    let (mut child, base) = serve(dir.path(), &db);

    let mut failures = vec![];
    let mut visited_total = 0;
    for account in ACCOUNTS {
        let mut s = Session::login(&base, account).await;
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut variants: BTreeMap<String, usize> = BTreeMap::new();
        let mut queue: VecDeque<(String, String)> = VecDeque::from([("/".to_string(), "(start)".to_string())]);
        while let Some((path, from)) = queue.pop_front() {
            if seen.len() >= MAX_PAGES {
                break;
            }
            if seen.contains(&path) {
                continue;
            }
            let route = path.split('?').next().unwrap_or(&path).to_string();
            let n = variants.entry(route).or_default();
            if *n >= MAX_VARIANTS {
                continue;
            }
            *n += 1;
            seen.insert(path.clone());
            let (status, location, html) = s.get(&path).await;
            if status >= 400 {
                failures.push(format!("{account}: {path} → {status} (linked from {from})"));
                continue;
            }
            let next: Vec<String> = match (status, location) {
                (300..=399, Some(to)) => vec![to],
                _ => links(&html),
            };
            for link in next {
                if !leaves_the_crawl(&link) && !seen.contains(&link) {
                    queue.push_back((link, path.clone()));
                }
            }
        }
        assert!(seen.len() >= 5, "{account} reached {} pages: {seen:?}", seen.len());
        println!("{account:<16} {:>4} pages", seen.len());
        visited_total += seen.len();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(visited_total > 100, "the crawl read {visited_total} pages");
    assert_eq!(failures, Vec::<String>::new(), "{} failures", failures.len());
}
