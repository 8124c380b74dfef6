//! Who is who (issue 18 item 1): the people recorded for a party and the related parties they
//! make. A person is stored by name, role and keyed hashes of the resident ID number and the
//! phone (the caller hashes; the numbers never reach this crate). Two parties are related when
//! they share a person, a phone, a payout bank account (by its keyed hash) or a registered
//! address (by its matching key; OPCs and enterprises).

use crate::audit::{record_after, record_before_after, Actor};
use crate::{is_unique_violation, new_id, now_ms, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::BTreeMap;

/// A person recorded for a party, as shown: no number and no hash leaves the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PartyPerson {
    pub id: String,
    /// `opc`, `community` or `enterprise`.
    pub party_kind: String,
    pub party_id: String,
    /// `founder`, `beneficial_owner` or `controlling_person`.
    pub role: String,
    pub name: String,
    /// Whether a phone was recorded with the person (the number is not kept).
    pub phone_recorded: bool,
    pub created_at: i64,
}

/// A person to record (validated and hashed by the caller).
#[derive(Debug, Clone)]
pub struct NewPerson<'a> {
    pub role: &'a str,
    pub name: &'a str,
    pub id_hash: &'a str,
    pub phone_hash: Option<&'a str>,
}

/// A party's registered address (注册地址), as given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PartyAddress {
    /// `opc` or `enterprise`.
    pub kind: String,
    pub id: String,
    pub registered_address: Option<String>,
}

/// Why two parties are related: `person`, `phone`, `bank_account` or `address` (the strongest
/// found).
pub type RelatedKind = &'static str;

fn person_from(r: &AnyRow) -> Result<PartyPerson> {
    let phone: Option<String> = r.try_get("phone_hash")?;
    Ok(PartyPerson {
        id: r.try_get("id")?,
        party_kind: r.try_get("party_kind")?,
        party_id: r.try_get("party_id")?,
        role: r.try_get("role")?,
        name: r.try_get("display_name")?,
        phone_recorded: phone.is_some(),
        created_at: r.try_get("created_at")?,
    })
}

const PERSON_COLS: &str = "id, party_kind, party_id, role, display_name, phone_hash, created_at";

/// Every party's payout bank account, as the keyed hash of its number, for the bank-account tie.
const BANK_NUMBERS: &str = "SELECT id, bank_account_hash FROM opcs WHERE bank_account_hash IS NOT NULL \
     UNION ALL SELECT id, bank_account_hash FROM communities WHERE bank_account_hash IS NOT NULL \
     UNION ALL SELECT id, bank_account_hash FROM enterprises WHERE bank_account_hash IS NOT NULL";

/// Every OPC's and enterprise's registered address key, for the address tie.
const ADDRESS_KEYS: &str = "SELECT id, address_key FROM opcs WHERE address_key IS NOT NULL AND address_key <> '' \
     UNION ALL SELECT id, address_key FROM enterprises WHERE address_key IS NOT NULL AND address_key <> ''";

/// The table of a party that has a registered address: an OPC or an enterprise (a
/// community's company is not compared: its OPCs register at its address by design).
fn address_table(kind: &str) -> Result<&'static str> {
    if kind == "community" {
        return Err(StoreError::Invalid {
            field: "kind",
            code: "unknown_kind",
        });
    }
    crate::party_facts::table_of(kind)
}

/// The ties by a value two parties' rows share, strongest first: (tie, query of `id` and the
/// value, the value's column).
const SHARED_VALUES: [(RelatedKind, &str, &str); 2] = [
    ("bank_account", BANK_NUMBERS, "bank_account_hash"),
    ("address", ADDRESS_KEYS, "address_key"),
];

fn ordered(a: String, b: String) -> (String, String) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl Store {
    /// The people recorded for a party, oldest first.
    pub async fn party_persons(&self, party_id: &str) -> Result<Vec<PartyPerson>> {
        sqlx::query(&format!(
            "SELECT {PERSON_COLS} FROM party_persons WHERE party_id = $1 ORDER BY created_at, id"
        ))
        .bind(party_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(person_from)
        .collect()
    }

    /// Records a person for a party (the party must exist), audited as `party.person`.
    /// The same person twice for one party is `person_already_recorded`.
    pub async fn add_party_person(&self, actor: &Actor, kind: &str, party_id: &str, p: &NewPerson<'_>) -> Result<PartyPerson> {
        // The party exists (and `kind` is known): read through the bank-account row.
        self.party_bank_account(kind, party_id).await?;
        let mut tx = self.begin().await?;
        let id = new_id();
        let now = now_ms();
        let res = sqlx::query(
            "INSERT INTO party_persons (id, party_kind, party_id, role, display_name, id_hash, phone_hash, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(kind)
        .bind(party_id)
        .bind(p.role)
        .bind(p.name)
        .bind(p.id_hash)
        .bind(p.phone_hash)
        .bind(now)
        .bind(actor.user_id.as_deref().unwrap_or("system"))
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            if is_unique_violation(&e, "party_persons") {
                return Err(StoreError::Conflict("person_already_recorded"));
            }
            return Err(e.into());
        }
        let person = PartyPerson {
            id: id.clone(),
            party_kind: kind.to_string(),
            party_id: party_id.to_string(),
            role: p.role.to_string(),
            name: p.name.to_string(),
            phone_recorded: p.phone_hash.is_some(),
            created_at: now,
        };
        record_after(
            &mut tx,
            actor,
            "party.person",
            kind,
            party_id,
            serde_json::json!({ "person": &person }),
            format!("person recorded: {} ({})", p.name, p.role),
        )
        .await?;
        tx.commit().await?;
        Ok(person)
    }

    /// Removes a recorded person of a party, audited as `party.person_removed`.
    pub async fn remove_party_person(&self, actor: &Actor, party_id: &str, person_id: &str) -> Result<PartyPerson> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!("SELECT {PERSON_COLS} FROM party_persons WHERE id = $1 AND party_id = $2"))
            .bind(person_id)
            .bind(party_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let person = person_from(&row)?;
        sqlx::query("DELETE FROM party_persons WHERE id = $1")
            .bind(person_id)
            .execute(&mut *tx)
            .await?;
        record_before_after(
            &mut tx,
            actor,
            "party.person_removed",
            &person.party_kind,
            party_id,
            serde_json::json!({ "person": &person }),
            serde_json::json!({ "person": null }),
            format!("person removed: {} ({})", person.name, person.role),
        )
        .await?;
        tx.commit().await?;
        Ok(person)
    }

    /// Why parties `a` and `b` are related, if they are: they share a recorded person, a
    /// phone, a payout bank account or a registered address. Indexed lookups; used on every
    /// skill call (through the app's short-lived cache).
    pub async fn related_between(&self, a: &str, b: &str) -> Result<Option<RelatedKind>> {
        if a == b {
            return Ok(None);
        }
        let r = sqlx::query(
            "SELECT CAST(MAX(CASE WHEN x.id_hash = y.id_hash THEN 1 ELSE 0 END) AS BIGINT) AS person, \
                    CAST(MAX(CASE WHEN x.phone_hash = y.phone_hash THEN 1 ELSE 0 END) AS BIGINT) AS phone \
             FROM party_persons x JOIN party_persons y ON (x.id_hash = y.id_hash OR x.phone_hash = y.phone_hash) \
             WHERE x.party_id = $1 AND y.party_id = $2",
        )
        .bind(a)
        .bind(b)
        .fetch_one(&self.pool)
        .await?;
        let person: Option<i64> = r.try_get("person")?;
        let phone: Option<i64> = r.try_get("phone")?;
        if person == Some(1) {
            return Ok(Some("person"));
        }
        if phone == Some(1) {
            return Ok(Some("phone"));
        }
        for (tie, sql, col) in SHARED_VALUES {
            let values: Vec<String> = sqlx::query_scalar(&format!("SELECT {col} FROM ({sql}) t WHERE id = $1 OR id = $2"))
                .bind(a)
                .bind(b)
                .fetch_all(&self.pool)
                .await?;
            if values.len() == 2 && values[0] == values[1] {
                return Ok(Some(tie));
            }
        }
        Ok(None)
    }

    /// A party's registered address (`kind`: `opc` or `enterprise`).
    pub async fn party_address(&self, kind: &str, id: &str) -> Result<PartyAddress> {
        let table = address_table(kind)?;
        let address: Option<String> = sqlx::query_scalar(&format!("SELECT registered_address FROM {table} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(PartyAddress {
            kind: kind.to_string(),
            id: id.to_string(),
            registered_address: address,
        })
    }

    /// Sets a party's registered address and its matching key (validated and keyed by the
    /// caller), audited as `party.address`.
    pub async fn set_party_address(&self, actor: &Actor, kind: &str, id: &str, address: &str, key: &str) -> Result<PartyAddress> {
        let table = address_table(kind)?;
        let before = self.party_address(kind, id).await?;
        let mut tx = self.begin().await?;
        sqlx::query(&format!(
            "UPDATE {table} SET registered_address = $1, address_key = $2 WHERE id = $3"
        ))
        .bind(address)
        .bind(key)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        record_before_after(
            &mut tx,
            actor,
            "party.address",
            kind,
            id,
            serde_json::json!({ "registered_address": before.registered_address }),
            serde_json::json!({ "registered_address": address }),
            format!("registered address {address}"),
        )
        .await?;
        tx.commit().await?;
        Ok(PartyAddress {
            registered_address: Some(address.to_string()),
            ..before
        })
    }

    /// Every pair of related parties (`a < b`) with the strongest tie between them: a shared
    /// person before a shared phone before a shared bank account before a shared address. For
    /// settlement and scans.
    pub async fn related_pairs(&self) -> Result<BTreeMap<(String, String), RelatedKind>> {
        let mut out: BTreeMap<(String, String), RelatedKind> = BTreeMap::new();
        // Weakest first: a stronger tie overwrites.
        let mut ties = vec![];
        for (tie, sql, col) in SHARED_VALUES.iter().rev() {
            ties.push((*tie, self.pairs_sharing(sql, col).await?));
        }
        ties.push(("phone", self.persons_sharing("phone_hash").await?));
        ties.push(("person", self.persons_sharing("id_hash").await?));
        for (tie, pairs) in ties {
            for (a, b) in pairs {
                if a != b {
                    out.insert(ordered(a, b), tie);
                }
            }
        }
        Ok(out)
    }

    /// Every pair of parties with the same value in the rows of `sql` (`id` and `col`).
    async fn pairs_sharing(&self, sql: &str, col: &str) -> Result<Vec<(String, String)>> {
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in sqlx::query(sql).fetch_all(&self.pool).await? {
            by.entry(r.try_get(col)?).or_default().push(r.try_get("id")?);
        }
        let mut pairs = vec![];
        for ids in by.into_values() {
            for (i, x) in ids.iter().enumerate() {
                for y in &ids[i + 1..] {
                    pairs.push((x.clone(), y.clone()));
                }
            }
        }
        Ok(pairs)
    }

    /// Every pair of parties whose recorded people share `col` (`id_hash` or `phone_hash`).
    async fn persons_sharing(&self, col: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(&format!(
            "SELECT DISTINCT x.party_id AS a, y.party_id AS b FROM party_persons x \
             JOIN party_persons y ON x.{col} = y.{col} AND x.party_id < y.party_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("a")?, r.try_get("b")?))).collect()
    }

    /// Every recorded person's and phone's hash and every registered address key by party, for
    /// the integrity scan's signals: (party id, `person`, `phone` or `address`, value).
    pub async fn person_signals(&self) -> Result<Vec<(String, &'static str, String)>> {
        let mut out = vec![];
        for r in sqlx::query("SELECT party_id, id_hash, phone_hash FROM party_persons ORDER BY party_id, id")
            .fetch_all(&self.pool)
            .await?
        {
            let party: String = r.try_get("party_id")?;
            out.push((party.clone(), "person", r.try_get("id_hash")?));
            if let Some(ph) = r.try_get::<Option<String>, _>("phone_hash")? {
                out.push((party, "phone", ph));
            }
        }
        for r in sqlx::query(&format!("{ADDRESS_KEYS} ORDER BY id")).fetch_all(&self.pool).await? {
            out.push((r.try_get("id")?, "address", r.try_get("address_key")?));
        }
        Ok(out)
    }
}
