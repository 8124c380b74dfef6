//! Test support: starts the real application on 127.0.0.1 port 0 with a fresh database —
//! a new SQLite file by default, or a new schema in the PostgreSQL database named by
//! `OPCHUB_TEST_DATABASE_URL` (set by `.ci/run`) — and a small HTTP client that keeps
//! cookies and CSRF tokens like a browser does.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use opchub_domain::{Role, Uscc, Zone};
use opchub_store::accounts::NewUser;
use opchub_store::registry::NewCommunity;
use opchub_store::{Actor, Store};
use opchub_web::{AppState, WebConfig};
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

pub const PASSWORD: &str = "correct-horse-9";

/// A database for one test: its URL and what keeps it alive.
pub struct TestDb {
    pub url: String,
    /// The deployment's channel-secret key (replicas share it, like the database).
    pub secret_hex: String,
    _dir: Option<tempfile::TempDir>,
}

static HASH: OnceLock<String> = OnceLock::new();

pub fn password_hash() -> String {
    HASH.get_or_init(|| opchub_web::auth::hash_password(PASSWORD).unwrap()).clone()
}

pub async fn fresh_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = opchub_testkit::db::fresh_database_url(dir.path()).await.unwrap();
    let keep = if url.starts_with("sqlite") { Some(dir) } else { None };
    TestDb {
        url,
        secret_hex: opchub_gateway::SecretBox::generate_hex(),
        _dir: keep,
    }
}

pub struct TestApp {
    pub base: String,
    pub store: Store,
    pub db: Arc<TestDb>,
    /// The ledger signing key (shared by replicas started with `start_on`).
    pub key: Arc<opchub_ledger::checkpoint::LedgerKey>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    gateway: Arc<opchub_gateway::Gateway>,
}

impl TestApp {
    pub async fn start() -> TestApp {
        let key = Arc::new(opchub_ledger::checkpoint::LedgerKey::generate("opchub.test"));
        Self::start_with(Arc::new(fresh_db().await), key).await
    }

    /// Starts a server on an existing database (a restart, or a second replica).
    pub async fn start_on(db: Arc<TestDb>) -> TestApp {
        let key = Arc::new(opchub_ledger::checkpoint::LedgerKey::generate("opchub.test"));
        Self::start_with(db, key).await
    }

    pub async fn start_with(db: Arc<TestDb>, key: Arc<opchub_ledger::checkpoint::LedgerKey>) -> TestApp {
        Self::start_full(db, key, None, opchub_web::skills::SkillsConfig::testing()).await
    }

    /// A server whose measures are in force since January 1st of this year (a preview of the
    /// policy as if already published), so that usage recorded today can be settled.
    pub async fn start_preview() -> TestApp {
        let key = Arc::new(opchub_ledger::checkpoint::LedgerKey::generate("opchub.test"));
        Self::start_full(
            Arc::new(fresh_db().await),
            key,
            Some(preview_policy()),
            opchub_web::skills::SkillsConfig::testing(),
        )
        .await
    }

    /// A server on an existing database with the given Skill Store configuration (e.g. the
    /// production default, which refuses private upstream addresses).
    pub async fn start_on_with_skills(db: Arc<TestDb>, skills: opchub_web::skills::SkillsConfig) -> TestApp {
        let key = Arc::new(opchub_ledger::checkpoint::LedgerKey::generate("opchub.test"));
        Self::start_full(db, key, None, skills).await
    }

    pub async fn start_full(
        db: Arc<TestDb>,
        key: Arc<opchub_ledger::checkpoint::LedgerKey>,
        policy: Option<opchub_policy::Policy>,
        skills: opchub_web::skills::SkillsConfig,
    ) -> TestApp {
        let gateway_config = opchub_gateway::GatewayConfig {
            drain_timeout: std::time::Duration::from_secs(10),
            ..Default::default()
        };
        Self::start_gateway(db, key, policy, skills, gateway_config, None).await
    }

    /// A replica on `db` keeping evidence and datasets in `files` (a local directory or an
    /// S3-compatible bucket), with the measures previewed as in force this year.
    #[allow(dead_code)]
    pub async fn start_files(
        db: Arc<TestDb>,
        key: Arc<opchub_ledger::checkpoint::LedgerKey>,
        files: opchub_app::files::FileStore,
    ) -> TestApp {
        let gateway_config = opchub_gateway::GatewayConfig {
            drain_timeout: std::time::Duration::from_secs(10),
            ..Default::default()
        };
        let skills = opchub_web::skills::SkillsConfig::testing();
        Self::start_gateway(db, key, Some(preview_policy()), skills, gateway_config, Some(files)).await
    }

    /// A server on a fresh database whose gateway has the given settings.
    pub async fn start_with_gateway(gateway_config: opchub_gateway::GatewayConfig) -> TestApp {
        let key = Arc::new(opchub_ledger::checkpoint::LedgerKey::generate("opchub.test"));
        let db = Arc::new(fresh_db().await);
        Self::start_gateway(db, key, None, opchub_web::skills::SkillsConfig::testing(), gateway_config, None).await
    }

    async fn start_gateway(
        db: Arc<TestDb>,
        key: Arc<opchub_ledger::checkpoint::LedgerKey>,
        policy: Option<opchub_policy::Policy>,
        skills: opchub_web::skills::SkillsConfig,
        gateway_config: opchub_gateway::GatewayConfig,
        files: Option<opchub_app::files::FileStore>,
    ) -> TestApp {
        Self::start_web(db, key, policy, skills, gateway_config, files, None).await
    }

    /// A server on a fresh database whose `/metrics` asks for this bearer token.
    pub async fn start_with_metrics_token(token: &str) -> TestApp {
        let key = Arc::new(opchub_ledger::checkpoint::LedgerKey::generate("opchub.test"));
        let db = Arc::new(fresh_db().await);
        let skills = opchub_web::skills::SkillsConfig::testing();
        Self::start_web(db, key, None, skills, Default::default(), None, Some(token.to_string())).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_web(
        db: Arc<TestDb>,
        key: Arc<opchub_ledger::checkpoint::LedgerKey>,
        policy: Option<opchub_policy::Policy>,
        skills: opchub_web::skills::SkillsConfig,
        gateway_config: opchub_gateway::GatewayConfig,
        files: Option<opchub_app::files::FileStore>,
        metrics_token: Option<String>,
    ) -> TestApp {
        let store = Store::connect(&db.url).await.unwrap();
        store.migrate().await.unwrap();
        // Checkpoints only when a test asks (no timing-dependent checkpoints).
        let ledger_config = opchub_store::ledger::LedgerConfig {
            origin: "opchub.test/ledger".into(),
            checkpoint_every: i64::MAX,
            checkpoint_interval: std::time::Duration::from_secs(3600),
            max_group: 10_000,
            background_linger: std::time::Duration::from_millis(5),
            priority: opchub_store::ledger::WriterPriority::Normal,
        };
        let writer = opchub_store::ledger::LedgerWriter::start(&store, key.clone(), ledger_config)
            .await
            .unwrap();
        let config = WebConfig {
            cookie_secure: true,
            body_limit: 64 * 1024,
            metrics_token,
        };
        let secrets = opchub_gateway::SecretBox::from_hex(&db.secret_hex).unwrap();
        let gateway = Arc::new(opchub_gateway::Gateway::new(store.clone(), writer.clone(), secrets, gateway_config));
        let state = AppState::new(store.clone(), config, opchub_web::metrics_handle())
            .with_ledger(writer)
            .with_gateway(gateway.clone())
            .with_skills(skills);
        let state = match policy {
            Some(p) => state.with_policy(p),
            None => state,
        };
        let state = match files {
            Some(f) => state.with_file_stores(f.join("evidence"), f.join("datasets")),
            None => state,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            opchub_web::serve(listener, state, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestApp {
            base,
            store,
            db,
            key,
            shutdown: Some(tx),
            handle: Some(handle),
            gateway,
        }
    }

    /// Graceful stop; the database stays.
    pub async fn stop(mut self) -> Arc<TestDb> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap();
        }
        // As `opchub serve` does: metering still in flight commits before the store closes.
        self.gateway.drain().await;
        self.store.close().await;
        self.db.clone()
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// Creates a user of `role` directly in the store and returns a signed-in browser client.
    pub async fn user(&self, username: &str, role: Role) -> (Client, String) {
        let u = self
            .store
            .create_user(
                &Actor::system(),
                NewUser {
                    username,
                    display_name: username,
                    role,
                    password_hash: &password_hash(),
                },
            )
            .await
            .unwrap();
        let c = self.client();
        c.login(username, PASSWORD).await;
        (c, u.id)
    }

    /// A community with `n` free workstations in `zone`, run by a new operator.
    pub async fn community(&self, zone: Zone, n: u32) -> (String, Vec<String>) {
        let op = format!("op{}", &opchub_store::new_id()[20..]);
        let u = self
            .store
            .create_user(
                &Actor::system(),
                NewUser {
                    username: &op,
                    display_name: &op,
                    role: Role::CommunityOperator,
                    password_hash: &password_hash(),
                },
            )
            .await
            .unwrap();
        let uscc = Uscc::complete("91110106MA01ABCDE").unwrap();
        let c = self
            .store
            .create_community(
                &Actor::system(),
                NewCommunity {
                    name: "测试OPC社区",
                    company_name: "北京测试园区运营有限公司",
                    company_uscc: &uscc,
                    zone,
                    address: "北京市丰台区汽车博物馆东路1号",
                    operator_user_id: &u.id,
                    workstations: n,
                },
            )
            .await
            .unwrap();
        let ws = self.store.workstations(&c.id).await.unwrap().into_iter().map(|w| w.id).collect();
        (c.id, ws)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// This year (Beijing) and the embedded measures previewed from its January 1st.
pub fn this_year() -> i32 {
    use chrono::Datelike;
    chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .year()
}

pub fn preview_policy() -> opchub_policy::Policy {
    let start = chrono::NaiveDate::from_ymd_opt(this_year(), 1, 1).unwrap();
    opchub_policy::Policy::embedded().unwrap().preview_from(start)
}

/// A valid, unique USCC for test companies.
pub fn uscc(n: u32) -> String {
    let alphabet = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let mut tail = String::new();
    let mut v = n;
    for _ in 0..6 {
        tail.insert(0, alphabet[(v % 31) as usize] as char);
        v /= 31;
    }
    Uscc::complete(&format!("91110106MA0{tail}")).unwrap().to_string()
}

/// The JSON body of a wizard registration.
pub fn registration(username: &str, uscc: &str, zone: &str, ws: &str) -> Value {
    serde_json::json!({
        "username": username, "password": PASSWORD, "founder_name": "王小明",
        "company_name": format!("北京{username}智能科技有限公司"), "uscc": uscc,
        "tax_registered": true, "zone": zone, "theme_package": "opc_agent_dev", "workstation_id": ws,
    })
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or("").to_string()
    }
    pub fn location(&self) -> String {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }
}

/// A browser-like client: keeps cookies (ignoring `Secure`, as browsers do on loopback),
/// never follows redirects, and sends the CSRF token with forms.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    http: reqwest::Client,
    cookies: Arc<Mutex<BTreeMap<String, String>>>,
    pub bearer: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Client {
            base: base.to_string(),
            http,
            cookies: Arc::new(Mutex::new(BTreeMap::new())),
            bearer: None,
        }
    }

    pub fn with_key(base: &str, key: &str) -> Client {
        let mut c = Client::new(base);
        c.bearer = Some(key.to_string());
        c
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Body>) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        let jar = self
            .cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !jar.is_empty() {
            req = req.header(COOKIE, jar);
        }
        if let Some(k) = &self.bearer {
            req = req.bearer_auth(k);
        }
        if let Some(csrf) = self.cookie("opchub_csrf") {
            req = req.header("x-csrf-token", csrf);
        }
        req = match body {
            None => req,
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Raw(ct, bytes)) => req.header("content-type", ct).body(bytes),
            Some(Body::Form(fields)) => {
                let mut fields = fields;
                if let Some(csrf) = self.cookie("opchub_csrf") {
                    if !fields.iter().any(|(k, _)| k == "_csrf") {
                        fields.push(("_csrf".into(), csrf));
                    }
                }
                req.form(&fields)
            }
        };
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        for sc in headers.get_all(SET_COOKIE) {
            let sc = sc.to_str().unwrap_or("");
            if let Some((kv, _)) = sc.split_once(';').or(Some((sc, ""))) {
                if let Some((k, v)) = kv.split_once('=') {
                    let mut jar = self.cookies.lock().unwrap();
                    if v.is_empty() || sc.contains("Max-Age=0") {
                        jar.remove(k);
                    } else {
                        jar.insert(k.to_string(), v.to_string());
                    }
                }
            }
        }
        let text = resp.text().await.unwrap_or_default();
        Resp { status, headers, text }
    }

    /// A GET whose body is kept as bytes (an XLSX download).
    pub async fn get_bytes(&self, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = self.http.get(format!("{}{}", self.base, path));
        let jar = self
            .cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !jar.is_empty() {
            req = req.header(COOKIE, jar);
        }
        if let Some(k) = &self.bearer {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.bytes().await.unwrap_or_default().to_vec())
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }
    pub async fn post_json(&self, path: &str, v: Value) -> Resp {
        self.send(Method::POST, path, Some(Body::Json(v))).await
    }
    pub async fn put_json(&self, path: &str, v: Value) -> Resp {
        self.send(Method::PUT, path, Some(Body::Json(v))).await
    }
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let f = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.send(Method::POST, path, Some(Body::Form(f))).await
    }

    /// Posts a `multipart/form-data` form as a browser does for a form with file inputs:
    /// text `fields` (the CSRF token added), then `files` as (input name, file name, media
    /// type, bytes).
    pub async fn post_multipart(&self, path: &str, fields: &[(&str, &str)], files: &[(&str, &str, &str, &[u8])]) -> Resp {
        let mut body = Vec::new();
        let mut fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Some(csrf) = self.cookie("opchub_csrf") {
            if !fields.iter().any(|(k, _)| k == "_csrf") {
                fields.insert(0, ("_csrf".into(), csrf));
            }
        }
        for (k, v) in &fields {
            body.extend_from_slice(
                format!("--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
            );
        }
        for (k, name, ct, bytes) in files {
            body.extend_from_slice(
                format!("--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{MULTIPART_BOUNDARY}--\r\n").as_bytes());
        self.send(Method::POST, path, Some(Body::Raw(MULTIPART_CONTENT_TYPE, body))).await
    }

    /// Signs in through the login page, as a browser would.
    pub async fn login(&self, username: &str, password: &str) {
        let page = self.get("/login").await;
        assert_eq!(page.status, StatusCode::OK);
        let r = self.post_form("/login", &[("username", username), ("password", password)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "login of {username} failed: {}", r.text);
        assert!(self.cookie("opchub_session").is_some());
    }
}

const MULTIPART_BOUNDARY: &str = "----OpcHubFormBoundary7MA4YWxkTrZu0gW";
const MULTIPART_CONTENT_TYPE: &str = "multipart/form-data; boundary=----OpcHubFormBoundary7MA4YWxkTrZu0gW";

pub enum Body {
    Json(Value),
    Raw(&'static str, Vec<u8>),
    Form(Vec<(String, String)>),
}

/// Rows in the audit log (to prove that refused requests wrote nothing).
pub async fn audit_count(store: &Store) -> usize {
    store.audit_entries(&Default::default()).await.unwrap().len()
}

// integ (issue 18): ledger sources serve only their owner's communities and their OPCs.
impl TestApp {
    /// A community of `n` free workstations in `zone` run by the given operator.
    pub async fn community_of(&self, operator_user_id: &str, zone: Zone, n: u32) -> (String, Vec<String>) {
        let uscc = Uscc::complete("91110106MA01ABCDE").unwrap();
        let c = self
            .store
            .create_community(
                &Actor::system(),
                NewCommunity {
                    name: "测试OPC社区",
                    company_name: "北京测试园区运营有限公司",
                    company_uscc: &uscc,
                    zone,
                    address: "北京市丰台区汽车博物馆东路1号",
                    operator_user_id,
                    workstations: n,
                },
            )
            .await
            .unwrap();
        let ws = self.store.workstations(&c.id).await.unwrap().into_iter().map(|w| w.id).collect();
        (c.id, ws)
    }

    /// An OPC registered through the wizard at a Hexi-area workstation; its id.
    pub async fn opc_at(&self, username: &str, uscc_n: u32, ws: &str) -> String {
        let r = self
            .client()
            .post_json("/api/v1/registrations", registration(username, &uscc(uscc_n), "hexi_area", ws))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json()["opc"]["id"].as_str().unwrap().to_string()
    }
}

// integ (issue 18): price tables are never back-dated through the API and price usage only
// once approved; a test that needs usage priced in the past seeds the history directly.
impl TestApp {
    /// An approved price table of `operator_user_id` effective from `from` (RFC 3339), written
    /// straight to the store as history (`items`: compute and data items as JSON).
    pub async fn seed_prices(&self, operator_user_id: &str, version: &str, from: &str, items: Value) {
        let items: Vec<opchub_store::gateway::ItemPrice> = serde_json::from_value(items).unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(from).unwrap().timestamp_millis();
        self.store
            .create_price_table(&Actor::system(), operator_user_id, version, at, &[], &items)
            .await
            .unwrap();
        self.store
            .set_price_table_status(&Actor::system(), operator_user_id, version, "approved", None)
            .await
            .unwrap();
    }
}

/// The platform operator approves a price table (issue 18: tables are reviewed as channels are).
pub async fn approve_prices(platform: &Client, operator_user_id: &str, version: &str) -> Value {
    let r = platform
        .put_json(
            &format!("/api/v1/gateway/prices/{operator_user_id}/{version}/status"),
            serde_json::json!({"status": "approved"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
}

// Issue 19 item 4: M2.2 and M2.3 count only usage on bills paid and confirmed, and only a month
// that has ended can be closed and billed; tests that settle usage date it last month.

/// Last month in Beijing: (`YYYY-MM`, noon on its 10th in ms, its year).
pub fn last_month() -> (String, i64, i32) {
    use chrono::{Datelike, TimeZone};
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let today = chrono::Utc::now().with_timezone(&beijing).date_naive();
    let day = today.with_day(1).unwrap().pred_opt().unwrap().with_day(10).unwrap();
    let at = beijing
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis();
    (opchub_ledger::event::period_of(at), at, day.year())
}

/// The line of a settlement batch (as the API shows it) for `clause` and `who`.
pub fn batch_line<'a>(lines: &'a [Value], clause: &str, who: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["clause"] == clause && l["beneficiary"] == who)
        .unwrap_or_else(|| panic!("no {clause} line for {who} in {lines:#?}"))
}

/// A batch line's decision trace, as text.
pub fn line_trace(l: &Value) -> String {
    let d: Value = serde_json::from_str(l["decision"].as_str().unwrap()).unwrap();
    d["trace"].to_string()
}

/// The committee imports every F3 list, naming nobody (so estimates and settlement lines are
/// determined rather than "information missing").
pub async fn import_empty_lists(committee: &Client) {
    for kind in [
        "restricted_industry",
        "no_support_sanction",
        "safety_accident",
        "excluded_by_review",
    ] {
        let r = committee
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/exclusions/{kind}"),
                Some(Body::Raw("text/csv", b"uscc,name,reason\n".to_vec())),
            )
            .await;
        assert_eq!(r.status, reqwest::StatusCode::CREATED, "{kind}: {}", r.text);
    }
}

/// The measures as if in force since January 1st of `year` (a preview of the published policy).
pub fn policy_for_year(year: i32) -> opchub_policy::Policy {
    let start = chrono::NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
    opchub_policy::Policy::embedded().unwrap().preview_from(start)
}

impl TestApp {
    /// The OPCs registered at `at_ms` (a loader's history): usage after it qualifies.
    pub async fn registered_at(&self, opcs: &[&str], at_ms: i64) {
        for id in opcs {
            self.store.set_opc_registered_at(&Actor::system(), id, at_ms).await.unwrap();
        }
    }

    /// Closes `month` (its bills are issued) and has every payee record receiving each bill in
    /// full (a receipt recorded by the payee is confirmed at once), so the month's usage counts
    /// for M2.2 and M2.3.
    pub async fn close_and_pay(&self, month: &str) {
        self.store
            .ledger_close_period(&Actor::system(), &self.key, "opchub.test", month)
            .await
            .unwrap();
        for b in self.store.issued_bills(Some(month), None, None).await.unwrap() {
            if b.total_fen == 0 {
                continue;
            }
            let receipt = opchub_store::bills::NewBillPayment {
                amount_fen: b.total_fen,
                paid_on: opchub_ledger::bills::day_after_month(month).unwrap(),
                reference: format!("RCV-{}", b.id.replace('.', "-")).to_uppercase(),
                note: String::new(),
                side: "payee",
                receipt: None,
            };
            let p = self.store.record_bill_payment(&Actor::system(), &b.id, &receipt).await.unwrap();
            assert_eq!(p.status, "confirmed");
        }
    }
}

/// Undoes the template engine's HTML escaping (it escapes `/` too).
pub fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
