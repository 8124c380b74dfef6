//! Facts about a party that every deployment sets through the platform (issue 17): G2 market
//! and tax registration of a community's company and of a district enterprise, M2.4's "in the
//! district" of an enterprise, and the bank account a beneficiary (OPC, community company,
//! enterprise) is paid to. Every change is audited with what it was before.

use crate::accounts::{insert_user, NewUser, User};
use crate::audit::{record_after, record_before_after, Actor};
use crate::{Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::BTreeMap;

/// The registration facts of a community's company or a district enterprise (G2, M2.4).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PartyRegistration {
    /// `community` or `enterprise`.
    pub kind: String,
    pub id: String,
    /// The company's name.
    pub name: String,
    pub uscc: String,
    pub zone: String,
    /// G2: registered with the market regulator (工商注册).
    pub market_registered: bool,
    /// G2: registered with the tax bureau (税务登记); null = not known yet ("information missing").
    pub tax_registered: Option<bool>,
    /// M2.4: a company in the district (enterprises only; null for a community).
    pub in_district: Option<bool>,
    /// F3: main industry (GB/T 4754-2017), matched against the restricted-industry catalogue.
    pub industry_code: Option<String>,
}

/// A change of registration facts: only the fields given change.
#[derive(Debug, Clone, Default)]
pub struct RegistrationChange {
    pub market_registered: Option<bool>,
    /// `Some(None)` clears it back to "not known".
    pub tax_registered: Option<Option<bool>>,
    pub in_district: Option<bool>,
}

/// Where a beneficiary is paid, in clear (validated by the caller): what its owner enters and
/// what finance's export reads. It is never stored so: see [`SealedBankAccount`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BankAccount {
    /// 户名: the account holder (normally the company's name).
    pub account_name: String,
    /// 开户行.
    pub bank: String,
    /// 账号: digits only.
    pub account_number: String,
}

/// A bank account as the platform keeps it (issue 18 item 1): the number sealed under the
/// platform's key (finance's export opens it), as a keyed hash (a shared account relates two
/// parties) and as its last four digits (what is shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBankAccount {
    pub account_name: String,
    pub bank: String,
    pub sealed: String,
    pub hash: String,
    pub tail: String,
}

/// A bank account as people see it: the holder, the bank and the number's last four digits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ShownBankAccount {
    /// 户名.
    pub account_name: String,
    /// 开户行.
    pub bank: String,
    /// The account number's last four digits (the number itself is kept sealed, never shown).
    pub account_tail: String,
}

/// A party's bank account, with whose it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PartyBankAccount {
    /// `opc`, `community` or `enterprise`.
    pub kind: String,
    pub id: String,
    pub name: String,
    /// Who may set it: the founder, the operator, the enterprise's owner.
    pub owner_user_id: String,
    pub bank_account: Option<ShownBankAccount>,
}

pub(crate) fn table_of(kind: &str) -> Result<&'static str> {
    match kind {
        "opc" => Ok("opcs"),
        "community" => Ok("communities"),
        "enterprise" => Ok("enterprises"),
        _ => Err(StoreError::Invalid {
            field: "kind",
            code: "unknown_kind",
        }),
    }
}

const COMMUNITY_REG: &str = "SELECT 'community' AS kind, id, company_name AS name, company_uscc AS uscc, zone, market_registered, \
                             tax_registered, CAST(NULL AS BIGINT) AS in_district, industry_code FROM communities";
const ENTERPRISE_REG: &str =
    "SELECT 'enterprise' AS kind, id, name, uscc, zone, market_registered, tax_registered, in_district, industry_code FROM enterprises";

fn registration_from(r: &AnyRow) -> Result<PartyRegistration> {
    let market: i64 = r.try_get("market_registered")?;
    let tax: Option<i64> = r.try_get("tax_registered")?;
    let in_district: Option<i64> = r.try_get("in_district")?;
    Ok(PartyRegistration {
        kind: r.try_get("kind")?,
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        uscc: r.try_get("uscc")?,
        zone: r.try_get("zone")?,
        market_registered: market != 0,
        tax_registered: tax.map(|t| t != 0),
        in_district: in_district.map(|d| d != 0),
        industry_code: r.try_get("industry_code")?,
    })
}

/// The columns of a party's kept account (after `bank_account_name, bank_name`).
const BANK_COLUMNS: &str = "bank_account_name, bank_name, bank_account_sealed, bank_account_hash, bank_account_tail";

fn sealed_from(r: &AnyRow) -> Result<Option<SealedBankAccount>> {
    let name: Option<String> = r.try_get("bank_account_name")?;
    let bank: Option<String> = r.try_get("bank_name")?;
    let sealed: Option<String> = r.try_get("bank_account_sealed")?;
    let hash: Option<String> = r.try_get("bank_account_hash")?;
    let tail: Option<String> = r.try_get("bank_account_tail")?;
    Ok(match (name, bank, sealed, hash, tail) {
        (Some(account_name), Some(bank), Some(sealed), Some(hash), Some(tail)) => Some(SealedBankAccount {
            account_name,
            bank,
            sealed,
            hash,
            tail,
        }),
        _ => None,
    })
}

fn shown(a: &SealedBankAccount) -> ShownBankAccount {
    ShownBankAccount {
        account_name: a.account_name.clone(),
        bank: a.bank.clone(),
        account_tail: a.tail.clone(),
    }
}

fn bank_from(r: &AnyRow) -> Result<Option<ShownBankAccount>> {
    Ok(sealed_from(r)?.as_ref().map(shown))
}

impl Store {
    /// Every community's company and every district enterprise with its registration facts.
    pub async fn party_registrations(&self) -> Result<Vec<PartyRegistration>> {
        let mut out = vec![];
        for sql in [COMMUNITY_REG, ENTERPRISE_REG] {
            for r in sqlx::query(&format!("{sql} ORDER BY created_at, id")).fetch_all(&self.pool).await? {
                out.push(registration_from(&r)?);
            }
        }
        Ok(out)
    }

    pub async fn party_registration(&self, kind: &str, id: &str) -> Result<PartyRegistration> {
        let sql = match kind {
            "community" => COMMUNITY_REG,
            "enterprise" => ENTERPRISE_REG,
            _ => {
                return Err(StoreError::Invalid {
                    field: "kind",
                    code: "unknown_kind",
                })
            }
        };
        let r = sqlx::query(&format!("{sql} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        registration_from(&r)
    }

    /// Changes the registration facts given in `c` (G2; M2.4's in-district for an enterprise),
    /// audited as `company.registration` with the facts before and after.
    pub async fn set_party_registration(&self, actor: &Actor, kind: &str, id: &str, c: &RegistrationChange) -> Result<PartyRegistration> {
        let table = match kind {
            "community" | "enterprise" => table_of(kind)?,
            _ => {
                return Err(StoreError::Invalid {
                    field: "kind",
                    code: "unknown_kind",
                })
            }
        };
        if kind == "community" && c.in_district.is_some() {
            return Err(StoreError::Invalid {
                field: "in_district",
                code: "not_applicable",
            });
        }
        let before = self.party_registration(kind, id).await?;
        let mut tx = self.begin().await?;
        let market = c.market_registered.unwrap_or(before.market_registered);
        let tax = c.tax_registered.unwrap_or(before.tax_registered);
        if kind == "enterprise" {
            let district = c.in_district.or(before.in_district).unwrap_or(true);
            sqlx::query(&format!(
                "UPDATE {table} SET market_registered = $1, tax_registered = $2, in_district = $3 WHERE id = $4"
            ))
            .bind(i64::from(market))
            .bind(tax.map(i64::from))
            .bind(i64::from(district))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(&format!(
                "UPDATE {table} SET market_registered = $1, tax_registered = $2 WHERE id = $3"
            ))
            .bind(i64::from(market))
            .bind(tax.map(i64::from))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let after = PartyRegistration {
            market_registered: market,
            tax_registered: tax,
            in_district: if kind == "enterprise" {
                c.in_district.or(before.in_district)
            } else {
                None
            },
            ..before.clone()
        };
        let facts = |p: &PartyRegistration| {
            serde_json::json!({
                "market_registered": p.market_registered,
                "tax_registered": p.tax_registered,
                "in_district": p.in_district,
            })
        };
        let show = |v: Option<bool>| v.map_or("—".to_string(), |b| b.to_string());
        record_before_after(
            &mut tx,
            actor,
            "company.registration",
            kind,
            id,
            facts(&before),
            facts(&after),
            format!(
                "market_registered = {}, tax_registered = {}, in_district = {}",
                after.market_registered,
                show(after.tax_registered),
                show(after.in_district)
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// One party's bank account and owner (`kind`: `opc`, `community`, `enterprise`).
    pub async fn party_bank_account(&self, kind: &str, id: &str) -> Result<PartyBankAccount> {
        let sql = match kind {
            "opc" => "SELECT id, name, founder_user_id AS owner, {BANK} FROM opcs WHERE id = $1",
            "community" => "SELECT id, company_name AS name, operator_user_id AS owner, {BANK} FROM communities WHERE id = $1",
            "enterprise" => "SELECT id, name, owner_user_id AS owner, {BANK} FROM enterprises WHERE id = $1",
            _ => {
                return Err(StoreError::Invalid {
                    field: "kind",
                    code: "unknown_kind",
                })
            }
        };
        let r = sqlx::query(&sql.replace("{BANK}", BANK_COLUMNS))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(PartyBankAccount {
            kind: kind.to_string(),
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            owner_user_id: r.try_get("owner")?,
            bank_account: bank_from(&r)?,
        })
    }

    /// The parties a user owns (its OPC, the communities it operates, its enterprise) with their
    /// bank accounts.
    pub async fn bank_accounts_of_owner(&self, user_id: &str) -> Result<Vec<PartyBankAccount>> {
        let mut out = vec![];
        for (kind, sql) in [
            ("opc", "SELECT id FROM opcs WHERE founder_user_id = $1 ORDER BY id"),
            (
                "community",
                "SELECT id FROM communities WHERE operator_user_id = $1 ORDER BY created_at, id",
            ),
            ("enterprise", "SELECT id FROM enterprises WHERE owner_user_id = $1 ORDER BY id"),
        ] {
            let ids: Vec<String> = sqlx::query_scalar(sql).bind(user_id).fetch_all(&self.pool).await?;
            for id in ids {
                out.push(self.party_bank_account(kind, &id).await?);
            }
        }
        Ok(out)
    }

    /// Sets (or clears) where a party is paid, audited as `party.bank_account`.
    pub async fn set_bank_account(
        &self,
        actor: &Actor,
        kind: &str,
        id: &str,
        account: Option<&SealedBankAccount>,
    ) -> Result<PartyBankAccount> {
        let table = table_of(kind)?;
        let before = self.party_bank_account(kind, id).await?;
        let mut tx = self.begin().await?;
        sqlx::query(&format!(
            "UPDATE {table} SET bank_account_name = $1, bank_name = $2, bank_account_sealed = $3, bank_account_hash = $4, \
             bank_account_tail = $5, bank_account_number = NULL WHERE id = $6"
        ))
        .bind(account.map(|a| a.account_name.clone()))
        .bind(account.map(|a| a.bank.clone()))
        .bind(account.map(|a| a.sealed.clone()))
        .bind(account.map(|a| a.hash.clone()))
        .bind(account.map(|a| a.tail.clone()))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let account = account.map(shown);
        let summary = match &account {
            Some(a) => format!("bank account {} {} ****{}", a.account_name, a.bank, a.account_tail),
            None => "bank account cleared".to_string(),
        };
        record_before_after(
            &mut tx,
            actor,
            "party.bank_account",
            kind,
            id,
            serde_json::json!({ "bank_account": before.bank_account }),
            serde_json::json!({ "bank_account": account }),
            summary,
        )
        .await?;
        tx.commit().await?;
        Ok(PartyBankAccount {
            bank_account: account,
            ..before
        })
    }

    /// Where each settlement beneficiary is paid, by its settlement id: an OPC by its id, a
    /// community operator's account by the company of its first community, an enterprise by its
    /// id. Sealed: the caller opens the numbers for finance's export.
    pub async fn settlement_bank_accounts(&self) -> Result<BTreeMap<String, SealedBankAccount>> {
        let mut out = BTreeMap::new();
        for r in sqlx::query(&format!("SELECT id, {BANK_COLUMNS} FROM opcs"))
            .fetch_all(&self.pool)
            .await?
        {
            if let Some(b) = sealed_from(&r)? {
                out.insert(r.try_get("id")?, b);
            }
        }
        for r in sqlx::query(&format!(
            "SELECT operator_user_id AS id, {BANK_COLUMNS} FROM communities ORDER BY created_at DESC, id DESC"
        ))
        .fetch_all(&self.pool)
        .await?
        {
            // Latest first, so the first community (the one settlement names) is written last.
            match sealed_from(&r)? {
                Some(b) => {
                    out.insert(r.try_get("id")?, b);
                }
                None => {
                    out.remove(&r.try_get::<String, _>("id")?);
                }
            }
        }
        for r in sqlx::query(&format!("SELECT id, {BANK_COLUMNS} FROM enterprises"))
            .fetch_all(&self.pool)
            .await?
        {
            if let Some(b) = sealed_from(&r)? {
                out.insert(r.try_get("id")?, b);
            }
        }
        Ok(out)
    }

    /// Account numbers still kept in clear (recorded before they were sealed): `(kind, id,
    /// number)`, for [`Store::seal_clear_bank_number`].
    pub async fn clear_bank_numbers(&self) -> Result<Vec<(String, String, String)>> {
        let mut out = vec![];
        for (kind, table) in [("opc", "opcs"), ("community", "communities"), ("enterprise", "enterprises")] {
            let sql = format!("SELECT id, bank_account_number FROM {table} WHERE bank_account_number IS NOT NULL ORDER BY id");
            for r in sqlx::query(&sql).fetch_all(&self.pool).await? {
                out.push((kind.to_string(), r.try_get("id")?, r.try_get("bank_account_number")?));
            }
        }
        Ok(out)
    }

    /// Replaces a clear account number by its sealed form, only if it is still the one read
    /// (two replicas sealing at once write it once). Returns whether this call sealed it.
    pub async fn seal_clear_bank_number(&self, kind: &str, id: &str, clear: &str, sealed: &str, hash: &str, tail: &str) -> Result<bool> {
        let table = table_of(kind)?;
        let done = sqlx::query(&format!(
            "UPDATE {table} SET bank_account_sealed = $1, bank_account_hash = $2, bank_account_tail = $3, bank_account_number = NULL \
             WHERE id = $4 AND bank_account_number = $5"
        ))
        .bind(sealed)
        .bind(hash)
        .bind(tail)
        .bind(id)
        .bind(clear)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Store {
    /// Creates an agency user already belonging to `agency` (F1: it reviews that agency's
    /// applications), in one transaction, audited.
    pub async fn create_agency_user(&self, actor: &Actor, u: NewUser<'_>, agency: &str) -> Result<User> {
        let mut tx = self.begin().await?;
        let user = insert_user(&mut tx, actor, u).await?;
        sqlx::query("UPDATE users SET agency = $1 WHERE id = $2")
            .bind(agency)
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
        record_after(
            &mut tx,
            actor,
            "user.agency",
            "user",
            &user.id,
            serde_json::json!({ "agency": agency }),
            format!("agency {agency}"),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Moves an agency user to another agency, audited with the agency before. Not an agency
    /// user: `user` / `not_an_agency_user`.
    pub async fn change_user_agency(&self, actor: &Actor, user_id: &str, agency: &str) -> Result<Option<String>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT role, agency FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let role: String = row.try_get("role")?;
        let before: Option<String> = row.try_get("agency")?;
        if role != "agency" {
            return Err(StoreError::Invalid {
                field: "user",
                code: "not_an_agency_user",
            });
        }
        sqlx::query("UPDATE users SET agency = $1 WHERE id = $2")
            .bind(agency)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        record_before_after(
            &mut tx,
            actor,
            "user.agency",
            "user",
            user_id,
            serde_json::json!({ "agency": before }),
            serde_json::json!({ "agency": agency }),
            format!("agency {} → {agency}", before.as_deref().unwrap_or("—")),
        )
        .await?;
        tx.commit().await?;
        Ok(before)
    }

    /// Agency users with their agencies (user id → agency).
    pub async fn user_agencies(&self) -> Result<BTreeMap<String, String>> {
        let rows = sqlx::query("SELECT id, agency FROM users WHERE role = 'agency' AND agency IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            out.insert(r.try_get("id")?, r.try_get("agency")?);
        }
        Ok(out)
    }
}
