//! `opchub bills …` (issue 19): monthly bills from the command line — list a party's bills,
//! record paying one (the payer), record receiving one or confirm a payment (the payee). Each
//! acts as the named account through the same use cases as the API and the pages (checks,
//! audit, notifications); a confirmed receipt is posted to the ledger by a writer this command
//! starts for itself.

use anyhow::Result;
use clap::Subcommand;
use opchub_app::bills::{self, BillQuery, PaymentInput};
use opchub_app::{App, Principal};
use opchub_domain::Money;
use opchub_ledger::checkpoint::LedgerKey;
use opchub_store::ledger::{LedgerConfig, LedgerWriter};
use opchub_store::Store;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum BillsCommand {
    /// The bills of the account's party (as payer and payee; the committee and the auditor: all).
    List {
        /// The account acting (its username).
        #[arg(long = "as")]
        as_user: String,
        /// `YYYY-MM`; every month when absent.
        #[arg(long)]
        month: Option<String>,
    },
    /// The payer records paying an issued bill (pending until the payee confirms).
    Pay(PaymentArgs),
    /// The payee records receiving a payment of an issued bill (confirmed at once, posted to the ledger).
    Receipt(PaymentArgs),
    /// The payee confirms a payment the payer recorded (posted to the ledger).
    Confirm {
        /// The payment's id.
        payment: String,
        #[arg(long = "as")]
        as_user: String,
    },
}

/// A payment of a bill, as the payer records it (`pay`) or the payee its receipt (`receipt`).
#[derive(clap::Args)]
pub struct PaymentArgs {
    /// `<month>.<payer>.<payee>`.
    bill: String,
    /// The account acting (its username).
    #[arg(long = "as")]
    as_user: String,
    #[arg(long)]
    amount_fen: i64,
    /// `YYYY-MM-DD`: after the bill's month, not in the future.
    #[arg(long)]
    paid_on: String,
    /// The bank's serial or receipt number (once per payee).
    #[arg(long)]
    reference: String,
    #[arg(long)]
    note: Option<String>,
}

async fn principal(store: &Store, username: &str) -> Result<Option<Principal>> {
    Ok(store
        .user_by_username(username)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .map(Principal::cli))
}

fn yuan(fen: i64) -> String {
    Money::from_fen(fen).to_string()
}

/// Returns the exit code: 0 done, 2 bad input or refused.
pub async fn run(store: &Store, key: LedgerKey, origin: &str, c: BillsCommand) -> Result<i32> {
    let as_user = match &c {
        BillsCommand::List { as_user, .. }
        | BillsCommand::Pay(PaymentArgs { as_user, .. })
        | BillsCommand::Receipt(PaymentArgs { as_user, .. })
        | BillsCommand::Confirm { as_user, .. } => as_user.clone(),
    };
    let Some(p) = principal(store, &as_user).await? else {
        eprintln!("error: unknown_user ({as_user})");
        return Ok(2);
    };
    let mut app = App::new(store.clone());
    if !matches!(c, BillsCommand::List { .. }) {
        let config = LedgerConfig {
            origin: origin.to_string(),
            ..Default::default()
        };
        app.ledger = Some(LedgerWriter::start(store, Arc::new(key), config).await?);
    }
    let input = |a: &PaymentArgs| PaymentInput {
        amount_fen: Some(a.amount_fen),
        paid_on: Some(a.paid_on.clone()),
        reference: Some(a.reference.clone()),
        note: a.note.clone(),
        receipt: None,
    };
    let done = match c {
        BillsCommand::List { month, .. } => {
            let q = BillQuery {
                month,
                status: None,
                side: None,
            };
            match bills::list_for(&app, &p, &q).await {
                Ok(list) => {
                    println!(
                        "{:<72} {:<15} {:>14} {:>14} {:>14}",
                        "bill", "status", "total", "paid", "outstanding"
                    );
                    for b in &list {
                        println!(
                            "{:<72} {:<15} {:>14} {:>14} {:>14}",
                            b.id,
                            b.status,
                            yuan(b.total_fen),
                            yuan(b.paid_fen),
                            yuan(b.total_fen - b.paid_fen)
                        );
                    }
                    let total: i64 = list.iter().map(|b| b.total_fen).sum();
                    let paid: i64 = list.iter().map(|b| b.paid_fen).sum();
                    println!("{} bills · billed {} · paid {}", list.len(), yuan(total), yuan(paid));
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        BillsCommand::Pay(a) => bills::record_payment_for(&app, &p, &a.bill, &input(&a))
            .await
            .map(|pay| println!("payment {} of {} on {}: {}", pay.id, yuan(pay.amount_fen), a.bill, pay.status)),
        BillsCommand::Receipt(a) => bills::record_receipt_for(&app, &p, &a.bill, &input(&a))
            .await
            .map(|pay| println!("receipt {} of {} on {}: {}", pay.id, yuan(pay.amount_fen), a.bill, pay.status)),
        BillsCommand::Confirm { payment, .. } => bills::confirm_for(&app, &p, &payment)
            .await
            .map(|pay| println!("payment {} of {} on {}: {}", pay.id, yuan(pay.amount_fen), pay.bill_id, pay.status)),
    };
    // Every write above awaited its commit (a posted receipt included): nothing is pending.
    drop(app);
    Ok(match done {
        Ok(()) => 0,
        Err(e) => crate::party_cli::report(&e),
    })
}
