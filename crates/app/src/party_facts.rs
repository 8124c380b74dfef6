//! Facts every deployment sets through the platform (issue 17), each with an owner who may set
//! it, an audited write and a stable error code for bad input:
//! - G2 market and tax registration of a community's company and of a district enterprise, and
//!   M2.4's "in the district" of an enterprise: the committee or the platform operator;
//! - the district agency an agency user reviews for (F1): the platform operator, at creation and later;
//! - the bank account a beneficiary (OPC, community company, enterprise) is paid to: its owner
//!   (the founder, the operator, the enterprise's owner); finance reads it in the exports. The
//!   number is kept sealed, hashed and as its last four digits (issue 18 item 1), never in clear.

use crate::{App, AppError, AppResult, Principal};
use opchub_domain::input::Checker;
use opchub_store::party_facts::{BankAccount, PartyBankAccount, PartyRegistration, RegistrationChange, SealedBankAccount};
use opchub_store::Actor;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

crate::module_errors! {
    /// What recording a party's facts (people, payout account) refuses.
    pub enum FactsError {
        /// The request changes nothing.
        NoChange => (BadRequest, "no_change"),
        /// Only the party's own representative may change its facts.
        NotOwner => (Forbidden, "not_owner"),
        /// There is no payout account to clear.
        BankAccountNotSet => (Conflict, "bank_account_not_set"),
    }
}

// ---------------------------------------------------------------- registration (G2, M2.4)

fn present_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<bool>>, D::Error> {
    Option::<bool>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct RegistrationFacts {
    /// G2: registered with the market regulator (工商注册).
    #[serde(default)]
    pub market_registered: Option<bool>,
    /// G2: registered with the tax bureau (税务登记); `null` clears it back to "not known".
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<bool>)]
    pub tax_registered: Option<Option<bool>>,
    /// M2.4: a company in the district (enterprises only).
    #[serde(default)]
    pub in_district: Option<bool>,
}

/// Every community's company and district enterprise with its registration facts.
pub async fn registrations(app: &App) -> AppResult<Vec<PartyRegistration>> {
    Ok(app.store.party_registrations().await?)
}

/// Records registration facts as `actor` (the committee, the platform operator, or the CLI).
/// `kind`: `community` or `enterprise`; an empty change is `no_change`; `in_district` of a
/// community is `in_district` / `not_applicable`.
pub async fn set_registration_as(app: &App, actor: &Actor, kind: &str, id: &str, r: &RegistrationFacts) -> AppResult<PartyRegistration> {
    if !["community", "enterprise"].contains(&kind) {
        return Err(AppError::field("kind", "unknown_kind"));
    }
    if r.market_registered.is_none() && r.tax_registered.is_none() && r.in_district.is_none() {
        return Err(FactsError::NoChange.into());
    }
    if kind == "community" && r.in_district.is_some() {
        return Err(AppError::field("in_district", "not_applicable"));
    }
    let change = RegistrationChange {
        market_registered: r.market_registered,
        tax_registered: r.tax_registered,
        in_district: r.in_district,
    };
    Ok(app.store.set_party_registration(actor, kind, id, &change).await?)
}

/// The committee or the platform operator records a company's registrations (route access
/// decides who; the actor is the caller).
pub async fn set_registration_for(app: &App, p: &Principal, kind: &str, id: &str, r: &RegistrationFacts) -> AppResult<PartyRegistration> {
    set_registration_as(app, &p.actor(), kind, id, r).await
}

// ---------------------------------------------------------------- agency membership (F1)

/// The district agencies the measures in force name as reviewers (`review_agency`), sorted.
pub fn agencies(app: &App) -> Vec<String> {
    let mut out: Vec<String> = app
        .policy
        .as_ref()
        .map(|p| p.clauses.iter().filter_map(|c| c.review_agency.clone()).collect())
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}

/// Checks an agency code against the measures in force: `agency` / `required` or `unknown_agency`.
pub fn check_agency(app: &App, c: &mut Checker, agency: Option<&str>) -> String {
    let a = agency.unwrap_or("").trim().to_string();
    if a.is_empty() {
        c.fail("agency", "required");
    } else if !agencies(app).contains(&a) {
        c.fail("agency", "unknown_agency");
    }
    a
}

/// Agency users with their agencies (user id → agency).
pub async fn user_agencies(app: &App) -> AppResult<std::collections::BTreeMap<String, String>> {
    Ok(app.store.user_agencies().await?)
}

#[derive(Deserialize, ToSchema)]
pub struct AgencyChange {
    /// A district agency the measures name as a reviewer (`science_technology`, `commerce`, …).
    pub agency: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AgencySet {
    pub user_id: String,
    pub agency: String,
    /// The agency before, if any.
    pub previous: Option<String>,
}

/// Moves an agency user to an agency, as `actor`.
pub async fn set_agency_as(app: &App, actor: &Actor, user_id: &str, r: &AgencyChange) -> AppResult<AgencySet> {
    let mut c = Checker::new();
    let agency = check_agency(app, &mut c, r.agency.as_deref());
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    let previous = app.store.change_user_agency(actor, user_id, &agency).await?;
    Ok(AgencySet {
        user_id: user_id.to_string(),
        agency,
        previous,
    })
}

pub async fn set_agency_for(app: &App, p: &Principal, user_id: &str, r: &AgencyChange) -> AppResult<AgencySet> {
    set_agency_as(app, &p.actor(), user_id, r).await
}

// ---------------------------------------------------------------- bank accounts

#[derive(Deserialize, ToSchema, Default)]
pub struct BankAccountChange {
    /// 户名: the account holder (1–100 characters).
    pub account_name: Option<String>,
    /// 开户行 (2–100 characters).
    pub bank: Option<String>,
    /// 账号: 8–30 digits (spaces are ignored).
    pub account_number: Option<String>,
}

/// Checks a bank account: `account_name`/`bank` as text, `account_number` `required`,
/// `not_digits` or `bad_length` (8–30 digits).
pub fn check_bank_account(r: &BankAccountChange) -> AppResult<BankAccount> {
    let mut c = Checker::new();
    let account_name = c.text("account_name", r.account_name.as_deref(), 1, 100);
    let bank = c.text("bank", r.bank.as_deref(), 2, 100);
    let number: String = r
        .account_number
        .as_deref()
        .unwrap_or("")
        .chars()
        .filter(|ch| !ch.is_whitespace())
        .collect();
    if number.is_empty() {
        c.fail("account_number", "required");
    } else if !number.bytes().all(|b| b.is_ascii_digit()) {
        c.fail("account_number", "not_digits");
    } else if !(8..=30).contains(&number.len()) {
        c.fail("account_number", "bad_length");
    }
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    Ok(BankAccount {
        account_name,
        bank,
        account_number: number,
    })
}

/// The beneficiary kinds that have a payout account.
fn beneficiary_kind(kind: &str) -> AppResult<()> {
    if ["opc", "community", "enterprise"].contains(&kind) {
        Ok(())
    } else {
        Err(AppError::field("kind", "unknown_kind"))
    }
}

/// The party's account as its owner reads it; anyone else is `not_owner`.
async fn owned_account(app: &App, p: &Principal, kind: &str, id: &str) -> AppResult<PartyBankAccount> {
    beneficiary_kind(kind)?;
    let current = app.store.party_bank_account(kind, id).await?;
    if current.owner_user_id != p.user.id {
        return Err(FactsError::NotOwner.into());
    }
    Ok(current)
}

/// Sets a party's bank account as `actor` (the CLI; owners go through [`set_bank_account_for`]).
pub async fn set_bank_account_as(app: &App, actor: &Actor, kind: &str, id: &str, r: &BankAccountChange) -> AppResult<PartyBankAccount> {
    beneficiary_kind(kind)?;
    let account = check_bank_account(r)?;
    let number = crate::persons::key(app)?.seal_bank_number(&account.account_number);
    let kept = SealedBankAccount {
        account_name: account.account_name,
        bank: account.bank,
        sealed: number.sealed,
        hash: number.hash,
        tail: number.tail,
    };
    let set = app.store.set_bank_account(actor, kind, id, Some(&kept)).await?;
    // A shared payout account relates two parties (issue 18 item 1).
    app.related.forget_all();
    Ok(set)
}

/// The beneficiary's owner sets where it is paid; anyone else is `not_owner`.
pub async fn set_bank_account_for(app: &App, p: &Principal, kind: &str, id: &str, r: &BankAccountChange) -> AppResult<PartyBankAccount> {
    owned_account(app, p, kind, id).await?;
    set_bank_account_as(app, &p.actor(), kind, id, r).await
}

/// Clears a party's bank account as `actor` (the CLI; owners go through
/// [`clear_bank_account_for`]): a wrong account is removed rather than overwritten with
/// another one. Until a new one is set, finance's payout export shows none. Audited.
pub async fn clear_bank_account_as(app: &App, actor: &Actor, kind: &str, id: &str) -> AppResult<PartyBankAccount> {
    beneficiary_kind(kind)?;
    let current = app.store.party_bank_account(kind, id).await?;
    clear_account(app, actor, kind, id, &current).await
}

/// The beneficiary's owner clears where it is paid; anyone else is `not_owner`.
pub async fn clear_bank_account_for(app: &App, p: &Principal, kind: &str, id: &str) -> AppResult<PartyBankAccount> {
    let current = owned_account(app, p, kind, id).await?;
    clear_account(app, &p.actor(), kind, id, &current).await
}

async fn clear_account(app: &App, actor: &Actor, kind: &str, id: &str, current: &PartyBankAccount) -> AppResult<PartyBankAccount> {
    if current.bank_account.is_none() {
        return Err(FactsError::BankAccountNotSet.into());
    }
    let cleared = app.store.set_bank_account(actor, kind, id, None).await?;
    // The account no longer relates this party to others (issue 18 item 1).
    app.related.forget_all();
    Ok(cleared)
}

/// Seals the account numbers recorded in clear before they were kept sealed (issue 18 item 1);
/// `serve` runs it at start. Returns how many this call sealed (a number sealed by another
/// replica meanwhile is left as that one wrote it).
pub async fn seal_clear_bank_accounts(app: &App) -> AppResult<usize> {
    let key = crate::persons::key(app)?;
    let mut sealed = 0;
    for (kind, id, clear) in app.store.clear_bank_numbers().await? {
        let n = key.seal_bank_number(&clear);
        if app
            .store
            .seal_clear_bank_number(&kind, &id, &clear, &n.sealed, &n.hash, &n.tail)
            .await?
        {
            sealed += 1;
        }
    }
    if sealed > 0 {
        app.related.forget_all();
    }
    Ok(sealed)
}

/// Where each settlement beneficiary is paid, the numbers opened for finance's export. A
/// number the key does not open (another deployment's key, damage) is an internal error:
/// finance must not pay from a partial list.
pub async fn payout_accounts(app: &App) -> AppResult<std::collections::BTreeMap<String, BankAccount>> {
    let key = crate::persons::key(app)?;
    let mut out = std::collections::BTreeMap::new();
    for (id, a) in app.store.settlement_bank_accounts().await? {
        let Some(account_number) = key.open_bank_number(&a.sealed) else {
            tracing::error!(beneficiary = %id, "a payout account number does not open with this key");
            return Err(AppError::internal());
        };
        out.insert(
            id,
            BankAccount {
                account_name: a.account_name,
                bank: a.bank,
                account_number,
            },
        );
    }
    Ok(out)
}

/// The caller's own parties with their bank accounts.
pub async fn my_bank_accounts(app: &App, p: &Principal) -> AppResult<Vec<PartyBankAccount>> {
    Ok(app.store.bank_accounts_of_owner(&p.user.id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(n: &str) -> BankAccountChange {
        BankAccountChange {
            account_name: Some("北京测试科技有限公司".into()),
            bank: Some("中国工商银行北京丰台支行".into()),
            account_number: Some(n.into()),
        }
    }

    #[test]
    fn a_bank_account_number_is_8_to_30_digits() {
        assert_eq!(
            check_bank_account(&acct("6222 0202 0001 2345 678")).unwrap().account_number,
            "6222020200012345678"
        );
        for (n, code) in [("", "required"), ("62220x0200012345", "not_digits"), ("1234567", "bad_length")] {
            let e = check_bank_account(&acct(n)).unwrap_err();
            assert_eq!(e.fields.get("account_number").map(String::as_str), Some(code), "{n}");
        }
        let e = check_bank_account(&BankAccountChange::default()).unwrap_err();
        assert!(e.fields.contains_key("account_name") && e.fields.contains_key("bank"));
    }
}
