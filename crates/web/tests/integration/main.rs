//! The HTTP integration suite, one test binary: each module starts the real application on
//! 127.0.0.1 with a fresh database (SQLite by default, a fresh PostgreSQL schema when
//! `OPCHUB_TEST_DATABASE_URL` is set, as `.ci/run` does). One binary instead of one per file
//! keeps the build lean: the application is linked once, not two dozen times.
//! Run one area with `cargo test -p opchub-web --test integration settlement::`.

mod applications;
mod bills;
mod common;
mod compute_data;
mod demand_pages;
mod demands;
mod engine_fidelity;
mod gateway;
mod gateway_pages;
mod integrity_findings;
mod integrity_money;
mod integrity_sources;
mod ledger;
mod ledger_pages;
mod mcp_fuzz;
mod openapi_golden;
mod pages;
mod party_facts;
mod registry_api;
mod replica_files;
mod route_roles;
mod security;
mod security_low;
mod settlement;
mod skill_budget;
mod skills;
mod skills_pages;
mod templates;
mod workstation_race;
