//! `opchub party …` and `opchub user set-agency` (issue 17): the facts a deployment sets —
//! G2 market and tax registration and M2.4 in-district of community companies and district
//! enterprises, bank accounts of beneficiaries, agency membership of agency users — through the
//! same use cases (checks, audit) as the API and pages; the CLI acts as the system.

use anyhow::Result;
use clap::Subcommand;
use opchub_app::party_facts::{self as facts, AgencyChange, BankAccountChange, RegistrationFacts};
use opchub_app::App;
use opchub_store::{Actor, Store};

#[derive(Subcommand)]
pub enum PartyCommand {
    /// List community companies and district enterprises with their registrations (and ids).
    List,
    /// Record G2 registrations (and M2.4 in-district of an enterprise); only the flags given change.
    Registration {
        /// community or enterprise.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        id: String,
        /// yes or no.
        #[arg(long, value_parser = ["yes", "no"])]
        market_registered: Option<String>,
        /// yes, no or unknown.
        #[arg(long, value_parser = ["yes", "no", "unknown"])]
        tax_registered: Option<String>,
        /// yes or no (enterprises only).
        #[arg(long, value_parser = ["yes", "no"])]
        in_district: Option<String>,
    },
    /// Set the bank account a beneficiary (opc, community, enterprise) is paid to.
    BankAccount {
        #[arg(long)]
        kind: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        account_name: String,
        #[arg(long)]
        bank: String,
        #[arg(long)]
        account_number: String,
    },
    /// Clear the bank account a beneficiary is paid to (a wrong account); audited.
    BankAccountClear {
        #[arg(long)]
        kind: String,
        #[arg(long)]
        id: String,
    },
    /// Record a founder, beneficial owner or controlling person of a party (issue 18 item 1):
    /// the ID number is checked (GB 11643) and kept only as a keyed hash.
    PersonAdd {
        /// opc, community or enterprise.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        id: String,
        /// founder, beneficial_owner or controlling_person.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
        /// 公民身份号码 (18 characters).
        #[arg(long)]
        id_number: String,
        #[arg(long)]
        phone: Option<String>,
    },
    /// Record the registered address (注册地址) of an OPC or an enterprise (issue 18 item 1):
    /// two parties registered at one address are related.
    Address {
        /// opc or enterprise.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        address: String,
    },
    /// List the people recorded for a party (names and roles; numbers are never shown).
    Persons {
        #[arg(long)]
        id: String,
    },
    /// List related parties: pairs sharing a person, a phone, a payout account or a registered address.
    Related,
}

fn yes(v: Option<&str>) -> Option<bool> {
    v.map(|v| v == "yes")
}

/// Prints an application error as `error: <code> (field: code, …)`; exit code 2.
pub fn report(e: &opchub_app::AppError) -> i32 {
    let fields: Vec<String> = e.fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    if fields.is_empty() {
        eprintln!("error: {}", e.code);
    } else {
        eprintln!("error: {} ({})", e.code, fields.join(", "));
    }
    2
}

/// Returns the exit code: 0 done, 2 bad input.
pub async fn run(store: &Store, identity: opchub_app::crypto::IdentityKey, c: PartyCommand) -> Result<i32> {
    let mut app = App::new(store.clone());
    app.identity_key = Some(identity);
    let actor = Actor::system();
    match c {
        PartyCommand::List => {
            let list = facts::registrations(&app).await.map_err(|e| anyhow::anyhow!("{}", e.code))?;
            println!(
                "{:<11} {:<26} {:<20} {:<7} {:<8} {:<8} name",
                "kind", "id", "uscc", "market", "tax", "district"
            );
            let show = |v: Option<bool>| v.map_or("-".to_string(), |b| if b { "yes" } else { "no" }.to_string());
            for p in list {
                println!(
                    "{:<11} {:<26} {:<20} {:<7} {:<8} {:<8} {}",
                    p.kind,
                    p.id,
                    p.uscc,
                    show(Some(p.market_registered)),
                    show(p.tax_registered),
                    show(p.in_district),
                    p.name
                );
            }
            Ok(0)
        }
        PartyCommand::Registration {
            kind,
            id,
            market_registered,
            tax_registered,
            in_district,
        } => {
            let r = RegistrationFacts {
                market_registered: yes(market_registered.as_deref()),
                tax_registered: tax_registered
                    .as_deref()
                    .map(|t| if t == "unknown" { None } else { Some(t == "yes") }),
                in_district: yes(in_district.as_deref()),
            };
            match facts::set_registration_as(&app, &actor, &kind, &id, &r).await {
                Ok(p) => {
                    println!(
                        "{} {}: market_registered={} tax_registered={} in_district={}",
                        p.kind,
                        p.id,
                        p.market_registered,
                        p.tax_registered.map_or("unknown".into(), |t| t.to_string()),
                        p.in_district.map_or("-".into(), |t| t.to_string())
                    );
                    Ok(0)
                }
                Err(e) => Ok(report(&e)),
            }
        }
        PartyCommand::BankAccount {
            kind,
            id,
            account_name,
            bank,
            account_number,
        } => {
            let r = BankAccountChange {
                account_name: Some(account_name),
                bank: Some(bank),
                account_number: Some(account_number),
            };
            match facts::set_bank_account_as(&app, &actor, &kind, &id, &r).await {
                Ok(p) => {
                    println!("{} {}: bank account set", p.kind, p.id);
                    Ok(0)
                }
                Err(e) => Ok(report(&e)),
            }
        }
        PartyCommand::BankAccountClear { kind, id } => match facts::clear_bank_account_as(&app, &actor, &kind, &id).await {
            Ok(p) => {
                println!("{} {}: bank account cleared", p.kind, p.id);
                Ok(0)
            }
            Err(e) => Ok(report(&e)),
        },
        PartyCommand::PersonAdd {
            kind,
            id,
            role,
            name,
            id_number,
            phone,
        } => {
            let r = opchub_app::persons::PersonChange {
                role: Some(role),
                name: Some(name),
                id_number: Some(id_number),
                phone,
            };
            match opchub_app::persons::add_person_as(&app, &actor, &kind, &id, &r).await {
                Ok(p) => {
                    println!("{} {}: {} recorded as {} ({})", p.party_kind, p.party_id, p.name, p.role, p.id);
                    Ok(0)
                }
                Err(e) => Ok(report(&e)),
            }
        }
        PartyCommand::Address { kind, id, address } => {
            let r = opchub_app::persons::AddressChange {
                registered_address: Some(address),
            };
            match opchub_app::persons::set_address_as(&app, &actor, &kind, &id, &r).await {
                Ok(a) => {
                    println!("{} {}: registered address set", a.kind, a.id);
                    Ok(0)
                }
                Err(e) => Ok(report(&e)),
            }
        }
        PartyCommand::Persons { id } => {
            let list = store.party_persons(&id).await?;
            println!("{:<34} {:<20} {:<6} name", "id", "role", "phone");
            for p in list {
                println!(
                    "{:<34} {:<20} {:<6} {}",
                    p.id,
                    p.role,
                    if p.phone_recorded { "yes" } else { "-" },
                    p.name
                );
            }
            Ok(0)
        }
        PartyCommand::Related => {
            let pairs = store.related_pairs().await?;
            println!("{:<34} {:<34} tie", "party", "party");
            for ((a, b), tie) in &pairs {
                println!("{a:<34} {b:<34} {tie}");
            }
            println!("{} related pairs", pairs.len());
            Ok(0)
        }
    }
}

/// `opchub user set-agency`: moves an agency user (by username) to an agency (F1).
pub async fn set_agency(store: &Store, username: &str, agency: &str) -> Result<i32> {
    let app = App::new(store.clone());
    let Some(user) = store.user_by_username(username).await.map_err(|e| anyhow::anyhow!("{e}"))? else {
        eprintln!("error: no user {username}");
        return Ok(2);
    };
    let r = AgencyChange {
        agency: Some(agency.to_string()),
    };
    match facts::set_agency_as(&app, &Actor::system(), &user.id, &r).await {
        Ok(s) => {
            println!("{username}: agency {}", s.agency);
            Ok(0)
        }
        Err(e) => Ok(report(&e)),
    }
}
