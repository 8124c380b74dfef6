//! `opchub`: the OPC Hub binary. Subcommands: `serve`, `migrate`, `user create`, `demo`.
//! Configuration: command-line flags > environment (`OPCHUB_*`) > `opchub.toml` > defaults.

mod bench;
mod bench_settle;
// Demand-board matching benchmark (M2.4)
mod bench_matching;
// Skill Store search benchmark (M2.3)
mod bench_search;
mod demo;
mod demo_applications;
mod demo_data;
mod demo_demands;
// The demo's gateway channel to the built-in demo upstream (issue 21 item 5, M2.2)
mod demo_gateway;
mod demo_skills;
mod demo_upstream;
mod integrity_cli;
mod ledger;
// Party facts: registrations, bank accounts, agencies (issue 17)
mod bills_cli;
mod party_cli;
mod policy_cli;
mod settle_cli;

// The service allocates many small, short-lived buffers per request and per ledger event
// (JSON, SQL arguments, hashes); mimalloc handles that pattern far better than glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn command_to_op(c: LedgerCommand) -> ledger::Op {
    match c {
        LedgerCommand::Verify => ledger::Op::Verify,
        LedgerCommand::Close { period } => ledger::Op::Close(period),
        LedgerCommand::Checkpoint => ledger::Op::Checkpoint,
        LedgerCommand::PublicKey => ledger::Op::PublicKey,
        LedgerCommand::SourceCreate {
            name,
            owner,
            rate_per_minute,
        } => ledger::Op::SourceCreate {
            name,
            owner,
            rate_per_minute,
        },
    }
}

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use opchub_store::{Actor, Store};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "opchub", version, about = "OPC Hub — 丰台园OPC社区综合服务平台")]
struct Cli {
    /// Database URL: sqlite://path/to/file.db or postgres://user@host/db (default: SQLite under the data directory).
    #[arg(long, global = true, env = "OPCHUB_DATABASE_URL")]
    database_url: Option<String>,
    /// Directory for the embedded database and uploaded files.
    #[arg(long, global = true, env = "OPCHUB_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file (TOML); read when present.
    #[arg(long, global = true, env = "OPCHUB_CONFIG", default_value = "opchub.toml")]
    config: PathBuf,
    /// Log format: `pretty` or `json`.
    #[arg(long, global = true, env = "OPCHUB_LOG_FORMAT")]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The policy engine: evaluate a clause from facts, run the policy's test cases, show clauses and values.
    Policy {
        #[command(subcommand)]
        command: policy_cli::PolicyCommand,
    },
    /// Run the platform (migrates the database first).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "OPCHUB_LISTEN")]
        listen: Option<SocketAddr>,
        /// Load demo data into an empty database and print demo logins.
        #[arg(long, env = "OPCHUB_DEMO")]
        demo: bool,
        /// Do not mark cookies `Secure` (only for plain-HTTP deployments off loopback).
        #[arg(long, env = "OPCHUB_INSECURE_COOKIES")]
        insecure_cookies: bool,
        /// Test mode only: let Skill Store publishers and gateway channels point at loopback and
        /// private addresses (refused otherwise, so the platform cannot be used to reach its own
        /// network).
        #[arg(long, env = "OPCHUB_ALLOW_PRIVATE_UPSTREAMS")]
        allow_private_upstreams: bool,
        /// A policy file adopted by the committee instead of the built-in measures.
        #[arg(long = "policy", env = "OPCHUB_POLICY")]
        policy_file: Option<PathBuf>,
        /// Where uploaded files are kept: a directory or `s3://bucket/prefix` (default: the data directory).
        #[arg(long, env = "OPCHUB_FILES_URL")]
        files_url: Option<String>,
        /// Seconds between the Skill Store's rug-pull checks of remote tool lists (default 600).
        #[arg(long, env = "OPCHUB_SKILL_REFRESH_SECONDS")]
        skill_refresh_seconds: Option<u64>,
        /// Seconds between scheduled integrity scans of this year's paid skill calls (default 3600; 0 turns them off).
        #[arg(long, env = "OPCHUB_INTEGRITY_SCAN_SECONDS", default_value_t = 3600)]
        integrity_scan_seconds: u64,
        /// `/metrics` answers only `Authorization: Bearer <token>`; unset, only callers on loopback.
        #[arg(long, env = "OPCHUB_METRICS_TOKEN", hide_env_values = true)]
        metrics_token: Option<String>,
    },
    /// 免申即享: settle a year from the ledger into a draft batch (or a what-if with --set; nothing saved).
    Settle(settle_cli::SettleArgs),
    /// F3 exclusion lists: import a new version from CSV, list versions.
    Exclusions {
        #[command(subcommand)]
        command: settle_cli::ExclusionsCommand,
    },
    /// Settlement batches: list, export an approved batch for the finance bureau.
    Settlement {
        #[command(subcommand)]
        command: settle_cli::SettlementCommand,
    },
    /// Benchmark 免申即享 settlement of one year on a scratch database; prints a table.
    BenchSettle {
        /// OPCs to settle (each a publisher and an invoker), plus operators and companies.
        #[arg(long, default_value_t = 10_000)]
        beneficiaries: usize,
        /// Events the seeded rollups summarise.
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Load demo data into the database (skipped if it already has OPCs).
    Demo,
    /// Party facts: G2 registrations and in-district of companies, bank accounts of beneficiaries.
    Party {
        #[command(subcommand)]
        command: party_cli::PartyCommand,
    },
    /// Monthly bills: list, record a payment (payer) or a receipt, confirm a payment (payee).
    Bills {
        #[command(subcommand)]
        command: bills_cli::BillsCommand,
    },
    /// Integrity: scan a year's paid skill calls for rings and related parties; list findings.
    Integrity {
        #[command(subcommand)]
        command: integrity_cli::IntegrityCommand,
    },
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The usage ledger: verify, close periods, checkpoints, sources.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Benchmark durable ledger ingestion (and proofs) on the configured database; prints a table.
    Bench {
        /// What to benchmark: `ledger` (default), `matching` (demand-board matching, M2.4) or `search`
        /// (Skill Store search, M2.3: seeds `--skills` listed skills, then times `--queries` searches).
        #[arg(default_value = "ledger", value_parser = ["ledger", "matching", "search"])]
        what: String,
        /// search: listed skills to search over (seeded when the database holds fewer).
        #[arg(long, default_value_t = 10_000)]
        skills: usize,
        /// matching: OPC profiles in the index.
        #[arg(long, default_value_t = 100_000)]
        opcs: usize,
        /// matching: open demands in the index.
        #[arg(long, default_value_t = 10_000)]
        demands: usize,
        /// matching, search: timed runs per operation (search: in all, over a fixed query mix).
        #[arg(long, default_value_t = 1_000)]
        queries: usize,
        /// Events per configuration.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Concurrent writers to try (comma-separated).
        #[arg(long, default_value = "1,8,64")]
        writers: String,
        /// Batch sizes to try (comma-separated).
        #[arg(long, default_value = "1,100,1000")]
        batches: String,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Rebuild the Merkle tree from the stored events and check every leaf, checkpoint, rollup and counter.
    Verify,
    /// Seal a month (YYYY-MM, Asia/Shanghai) that has ended, and take a checkpoint.
    Close {
        #[arg(long)]
        period: String,
    },
    /// Take a signed checkpoint of the current tree now.
    Checkpoint,
    /// Print the ledger's public key (signed-note verifier format).
    PublicKey,
    /// Register an outside source (e.g. a GPU cluster) and print its key once.
    SourceCreate {
        #[arg(long)]
        name: String,
        /// Username of the account that runs the source.
        #[arg(long)]
        owner: String,
        #[arg(long, default_value_t = 60_000)]
        rate_per_minute: i64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account of any role.
    Create {
        #[arg(long)]
        username: String,
        /// One of: opc_founder, enterprise, community_operator, platform_operator, specialist, committee, agency, finance, auditor.
        #[arg(long)]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Password (min. 8 characters); generated and printed when omitted.
        #[arg(long, env = "OPCHUB_NEW_USER_PASSWORD")]
        password: Option<String>,
        /// Agency users (required for them): the district agency they review for (F1), e.g. science_technology.
        #[arg(long)]
        agency: Option<String>,
    },
    /// Move an agency user to another district agency (F1); audited.
    SetAgency {
        #[arg(long)]
        username: String,
        #[arg(long)]
        agency: String,
    },
}

/// `opchub.toml`: every key optional.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    log_format: Option<String>,
    insecure_cookies: Option<bool>,
    body_limit: Option<usize>,
    ledger_origin: Option<String>,
    gateway_max_in_flight: Option<usize>,
    files_url: Option<String>,
    skill_refresh_seconds: Option<u64>,
    metrics_token: Option<String>,
}

/// The ledger signing key: `OPCHUB_LEDGER_KEY` (32-byte seed, hex) or `<data dir>/ledger.key`,
/// created on first use. It lives outside the database on purpose: whoever can write the
/// database must not also be able to re-sign an edited history. Replicas share one key.
fn ledger_key(data_dir: &Path) -> Result<opchub_ledger::checkpoint::LedgerKey> {
    use opchub_ledger::checkpoint::LedgerKey;
    const NAME: &str = "opchub.ledger";
    if let Ok(seed) = std::env::var("OPCHUB_LEDGER_KEY") {
        return LedgerKey::from_seed_hex(NAME, seed.trim()).map_err(|e| anyhow::anyhow!("OPCHUB_LEDGER_KEY: {e}"));
    }
    let path = data_dir.join("ledger.key");
    match std::fs::read_to_string(&path) {
        Ok(seed) => LedgerKey::from_seed_hex(NAME, seed.trim()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)?;
            let key = LedgerKey::generate(NAME);
            write_private(&path, &key.seed_hex())?;
            tracing::info!(path = %path.display(), "created a new ledger signing key");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The key that encrypts upstream channel secrets at rest (M2.2): `OPCHUB_SECRET_KEY` (32
/// bytes, hex) or `<data dir>/secret.key`, created on first use. Replicas share it.
fn secret_box(data_dir: &Path) -> Result<opchub_gateway::SecretBox> {
    if let Ok(k) = std::env::var("OPCHUB_SECRET_KEY") {
        return opchub_gateway::SecretBox::from_hex(&k).map_err(|e| anyhow::anyhow!("OPCHUB_SECRET_KEY: {e}"));
    }
    let path = data_dir.join("secret.key");
    let hex = match std::fs::read_to_string(&path) {
        Ok(h) => h,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)?;
            let h = opchub_gateway::SecretBox::generate_hex();
            write_private(&path, &h)?;
            h
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    opchub_gateway::SecretBox::from_hex(&hex).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn write_private(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    Ok(())
}

fn load_file_config(path: &Path) -> Result<FileConfig> {
    match std::fs::read_to_string(path) {
        Ok(s) => toml::from_str(&s).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn init_logging(format: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("OPCHUB_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn open_store(url: &str) -> Result<Store> {
    let store = Store::connect(url)
        .await
        .with_context(|| format!("connecting to {}", opchub_store::redact(url)))?;
    let applied = store.migrate().await.context("running migrations")?;
    tracing::info!(applied, backend = ?store.backend(), "database ready");
    Ok(store)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let file = load_file_config(&cli.config)?;
    init_logging(cli.log_format.as_deref().or(file.log_format.as_deref()).unwrap_or("pretty"));
    // The policy commands need no database (and must not create ./data).
    let command = match cli.command {
        Command::Policy { command } => std::process::exit(policy_cli::run(command)?),
        other => other,
    };
    let data_dir = cli
        .data_dir
        .clone()
        .or(file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("data"));
    let database_url = match cli.database_url.clone().or(file.database_url.clone()) {
        Some(u) => u,
        None => {
            std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
            format!("sqlite://{}", data_dir.join("opchub.db").display())
        }
    };
    let origin = std::env::var("OPCHUB_LEDGER_ORIGIN")
        .ok()
        .or(file.ledger_origin.clone())
        .unwrap_or_else(|| "opchub/ledger".into());
    match command {
        // Handled (and exited) above.
        Command::Policy { .. } => {}
        Command::Ledger { command } => {
            let store = open_store(&database_url).await?;
            let key = ledger_key(&data_dir)?;
            let code = ledger::run(&store, &key, &origin, command_to_op(command)).await?;
            store.close().await;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Bench {
            what,
            opcs,
            demands,
            queries,
            ..
        } if what == "matching" => {
            bench_matching::run(opcs, demands, queries)?;
        }
        Command::Bench { what, skills, queries, .. } if what == "search" => {
            let store = open_store(&database_url).await?;
            bench_search::run(&store, skills, queries).await?;
            store.close().await;
        }
        Command::Bench {
            events, writers, batches, ..
        } => {
            let store = open_store(&database_url).await?;
            let key = std::sync::Arc::new(ledger_key(&data_dir)?);
            let parse = |s: &str| -> Result<Vec<usize>> {
                s.split(',')
                    .map(|v| v.trim().parse::<usize>().context("a comma-separated list of numbers"))
                    .collect()
            };
            bench::run(&store, key, &origin, events, &parse(&writers)?, &parse(&batches)?).await?;
            store.close().await;
        }
        Command::Settle(args) => {
            let store = open_store(&database_url).await?;
            let code = settle_cli::settle(&store, args).await?;
            store.close().await;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Exclusions { command } => {
            let store = open_store(&database_url).await?;
            let code = settle_cli::exclusions(&store, command).await?;
            store.close().await;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Settlement { command } => {
            let store = open_store(&database_url).await?;
            // Finance's export opens the sealed payout account numbers (issue 18 item 1).
            let identity = opchub_app::crypto::IdentityKey::new(secret_box(&data_dir)?.identity_key());
            let code = settle_cli::settlement(&store, identity, command).await?;
            store.close().await;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::BenchSettle {
            beneficiaries,
            events,
            runs,
        } => {
            let store = open_store(&database_url).await?;
            bench_settle::run(&store, beneficiaries, events, runs).await?;
            store.close().await;
        }
        Command::Migrate => {
            let store = Store::connect(&database_url).await?;
            let n = store.migrate().await?;
            println!("migrations applied: {n} ({})", opchub_store::redact(&database_url));
            store.close().await;
        }
        Command::Demo => {
            let store = open_store(&database_url).await?;
            run_demo(&store).await?;
            demo::load_demo_usage(&store, &ledger_key(&data_dir)?, &origin).await?;
            demo_demands::load(&store).await?;
            load_demo_skills(&store).await?;
            store.close().await;
        }
        Command::Integrity { command } => {
            let store = open_store(&database_url).await?;
            let code = integrity_cli::run(&store, command).await?;
            store.close().await;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Bills { command } => {
            let store = open_store(&database_url).await?;
            let key = ledger_key(&data_dir)?;
            let code = bills_cli::run(&store, key, &origin, command).await?;
            store.close().await;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::Party { command } => {
            let store = open_store(&database_url).await?;
            // Recording a person hashes its numbers under the platform's key (issue 18 item 1).
            let identity = opchub_app::crypto::IdentityKey::new(secret_box(&data_dir)?.identity_key());
            let code = party_cli::run(&store, identity, command).await?;
            store.close().await;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::User {
            command: UserCommand::SetAgency { username, agency },
        } => {
            let store = open_store(&database_url).await?;
            let code = party_cli::set_agency(&store, &username, &agency).await?;
            store.close().await;
            if code != 0 {
                std::process::exit(code);
            }
        }
        Command::User {
            command:
                UserCommand::Create {
                    username,
                    role,
                    display_name,
                    password,
                    agency,
                },
        } => {
            let store = open_store(&database_url).await?;
            let (password, generated) = match password {
                Some(p) => (p, false),
                None => (opchub_app::crypto::random_token(9), true),
            };
            let display = display_name.unwrap_or_else(|| username.clone());
            // The same checks as the API's user creation (an agency user names its agency, F1).
            let app = opchub_app::App::new(store.clone());
            let req = opchub_app::accounts::NewUserRequest {
                username: Some(username),
                password: Some(password.clone()),
                display_name: Some(display),
                role: Some(role),
                agency,
            };
            let user = match opchub_app::accounts::create_user_as(&app, &Actor::system(), &req).await {
                Ok(u) => u,
                Err(e) => {
                    store.close().await;
                    std::process::exit(party_cli::report(&e));
                }
            };
            println!("created {} ({}) id={}", user.username, user.role, user.id);
            if generated {
                println!("password: {password}");
            }
            store.close().await;
        }
        Command::Serve {
            listen,
            demo,
            insecure_cookies,
            policy_file,
            allow_private_upstreams,
            files_url,
            skill_refresh_seconds,
            integrity_scan_seconds,
            metrics_token,
        } => {
            let listen = listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
            let store = open_store(&database_url).await?;
            let creds = if demo { run_demo(&store).await? } else { None };
            let key = std::sync::Arc::new(ledger_key(&data_dir)?);
            if demo {
                demo::load_demo_usage(&store, &key, &origin).await?;
                demo_demands::load(&store).await?;
                // Before the ledger writer starts: the demo's skill calls are appended directly.
                load_demo_skills(&store).await?;
            }
            let writer = opchub_store::ledger::LedgerWriter::start(
                &store,
                key,
                opchub_store::ledger::LedgerConfig {
                    origin: origin.clone(),
                    // Metering commits never hold up an answer on a busy core (issue 4).
                    priority: opchub_store::ledger::WriterPriority::Background,
                    ..Default::default()
                },
            )
            .await
            .context("starting the ledger writer")?;
            let config = opchub_web::WebConfig {
                cookie_secure: !(insecure_cookies || file.insecure_cookies.unwrap_or(false)),
                body_limit: file.body_limit.unwrap_or(64 * 1024),
                metrics_token: metrics_token.or(file.metrics_token).filter(|t| !t.trim().is_empty()),
            };
            let secrets = secret_box(&data_dir)?;
            let gateway = std::sync::Arc::new(opchub_gateway::Gateway::new(
                store.clone(),
                writer.clone(),
                secrets,
                opchub_gateway::GatewayConfig {
                    max_in_flight: file
                        .gateway_max_in_flight
                        .unwrap_or(opchub_gateway::GatewayConfig::default().max_in_flight),
                    ..Default::default()
                },
            ));
            let mut policy = settle_cli::load_policy(policy_file.as_ref())?;
            if demo {
                if let Some(preview) = settle_cli::demo_preview(&policy) {
                    println!(
                        "demo: the measures are previewed as in force from {} (policy v{}); the text's own date is used otherwise",
                        preview.1, preview.0.version
                    );
                    policy = preview.0;
                }
            }
            // Evidence and attachments (issue 8, F2) and datasets (M2.2), content-addressed by SHA-256.
            let files = match files_url.or(file.files_url.clone()) {
                Some(url) => opchub_app::files::FileStore::from_url(&url)?.with_spool_dir(data_dir.join("spool")),
                None => opchub_app::files::FileStore::local(data_dir.clone()),
            };
            tracing::info!(files = %files.location(), "file store");
            // The demo's own model provider on loopback (issue 21 item 5): a new port each start.
            let demo_upstream = if demo { Some(demo_upstream::start().await?) } else { None };
            let state = opchub_web::AppState::new(store.clone(), config, opchub_web::metrics_handle())
                .with_ledger(writer)
                .with_gateway(gateway)
                .with_policy(policy)
                .with_file_stores(files.join("evidence"), files.join("datasets"))
                .with_skills(opchub_app::skills::SkillsConfig {
                    allow_private_upstreams,
                    refresh_interval: skill_refresh_seconds
                        .or(file.skill_refresh_seconds)
                        .filter(|s| *s > 0)
                        .map(std::time::Duration::from_secs)
                        .unwrap_or(opchub_app::skills::DEFAULT_REFRESH_INTERVAL),
                    ..Default::default()
                });
            // The one loopback address a channel may name outside test mode, and only in the demo.
            let state = match &demo_upstream {
                Some(u) => state.with_demo_upstream(u.base_url.clone()),
                None => state,
            };
            // Payout account numbers recorded before they were kept sealed (issue 18 item 1).
            match opchub_app::party_facts::seal_clear_bank_accounts(&state.app).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sealed = n, "payout account numbers sealed"),
                Err(e) => anyhow::bail!("sealing payout account numbers: {}", e.code),
            }
            if demo {
                // Applications at several stages (issue 8), made through the API's own functions.
                let n = demo_applications::load(&state).await?;
                if n > 0 {
                    println!("demo data: {n} applications (M3.2 at agency review, M5.1 approved for payment, M8.1 granted)");
                }
                // Compute and data items, a dataset and a week of GPU usage (M2.2).
                let n = demo_data::load(&state).await?;
                if n > 0 {
                    println!("demo compute and data: GPU, traffic and dataset prices, one dataset, {n} GPU usage events");
                }
                // A channel to the built-in demo upstream, approved and priced (M2.2).
                if let Some(u) = &demo_upstream {
                    let outcome = demo_gateway::ensure(&state, &state, &u.base_url).await?;
                    if outcome != demo_gateway::Outcome::Skipped {
                        println!(
                            "demo gateway: channel \"{}\" serves model {} from the built-in demo upstream at {}",
                            demo_gateway::CHANNEL_NAME,
                            demo_upstream::MODEL,
                            u.base_url
                        );
                    }
                }
            }
            // The Skill Store's periodic rug-pull check (M2.3).
            let refresh = opchub_app::skills::spawn_refresh(state.app.clone());
            // The scheduled integrity scan (issue 18): rings and related parties of this year.
            let integrity_scan = (integrity_scan_seconds > 0).then(|| {
                opchub_app::integrity::spawn_scheduled_scan(state.app.clone(), std::time::Duration::from_secs(integrity_scan_seconds))
            });
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let addr = listener.local_addr()?;
            if let Some(creds) = creds {
                print_credentials(&creds);
            }
            let shutdown = shutdown_signal();
            println!("OPC Hub is running — open http://{addr}/");
            tracing::info!(%addr, "listening");
            let gateway = state.gateway.clone();
            opchub_web::serve(listener, state, shutdown).await?;
            // Streams still relaying and metering not yet committed finish before the store closes.
            if let Some(g) = gateway {
                if tokio::time::timeout(std::time::Duration::from_secs(30), g.drain()).await.is_err() {
                    tracing::warn!("gave up waiting for gateway metering after 30 s");
                }
            }
            refresh.abort();
            drop(demo_upstream);
            if let Some(t) = integrity_scan {
                t.abort();
            }
            store.close().await;
            tracing::info!("stopped");
        }
    }
    Ok(())
}

/// The demo Skill Store (M2.3), once: published and reviewed through the application's use
/// cases on an application context of its own (publisher addresses checked as in production).
async fn load_demo_skills(store: &Store) -> Result<()> {
    let app = opchub_app::App::new(store.clone()).with_skills(opchub_app::skills::SkillsConfig::default());
    let n = demo_skills::load(&app).await?;
    if n > 0 {
        println!("demo data: {n} skills listed in the Skill Store (/skills)");
    }
    Ok(())
}

/// Loads demo data (if the database has no OPCs yet) and returns the demo logins.
async fn run_demo(store: &Store) -> Result<Option<Vec<(String, String, String)>>> {
    let hash = opchub_app::crypto::hash_password(demo::DEMO_PASSWORD).map_err(|e| anyhow::anyhow!("{}", e.code))?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} demo data [{bar:30}] {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = demo::load_demo(store, &hash, &bar).await?;
    bar.finish_and_clear();
    match summary {
        None => {
            println!("demo data: database already has OPCs, nothing loaded");
            Ok(Some(demo_logins()))
        }
        Some(s) => {
            println!("demo data loaded:");
            println!("  {:<14} {:>6}", "users", s.users);
            println!("  {:<14} {:>6}", "communities", s.communities);
            println!("  {:<14} {:>6}", "workstations", s.workstations);
            println!("  {:<14} {:>6}", "OPCs", s.opcs);
            println!("  {:<14} {:>6}", "enterprises", s.enterprises);
            println!("  {:<14} {:>6}", "tickets", s.tickets);
            Ok(Some(s.credentials))
        }
    }
}

fn demo_logins() -> Vec<(String, String, String)> {
    [
        ("opc_founder", "opc"),
        ("enterprise", "enterprise"),
        ("community_operator", "operator"),
        ("platform_operator", "platform"),
        ("specialist", "specialist"),
        ("committee", "committee"),
        ("agency", "agency"),
        ("finance", "finance"),
        ("auditor", "auditor"),
    ]
    .iter()
    .map(|(r, u)| (r.to_string(), u.to_string(), demo::DEMO_PASSWORD.to_string()))
    .collect()
}

fn print_credentials(creds: &[(String, String, String)]) {
    println!("demo logins:");
    println!("  {:<20} {:<14} password", "role", "username");
    for (role, user, pass) in creds {
        println!("  {role:<20} {user:<14} {pass}");
    }
}

/// Registers SIGTERM/SIGINT handlers now (before the URL is printed, so an early signal is
/// a clean stop); the returned future completes on the first signal.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {},
                _ = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received, finishing in-flight requests");
    }
}
