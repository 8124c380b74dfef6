//! Who is who (issue 18 item 1): the people behind a party, recorded at registration and on
//! the record, and the related parties they make.
//!
//! - An OPC records its founder and beneficial owners; an enterprise its beneficial owners and
//!   controlling persons; a community's company its controlling persons and beneficial owners.
//! - A person is a name, a role, a resident ID number (GB 11643, check character validated)
//!   and optionally a mobile number; both numbers are kept only as keyed hashes
//!   ([`crate::crypto::IdentityKey`]) and never shown again.
//! - The party's owner records them (the founder, the operator, the enterprise's owner); the
//!   committee and the platform operator may too (a correction, a registration at the desk).
//! - An OPC and an enterprise record their registered address (注册地址): at registration or on
//!   the record, by the same people. It is compared by [`opchub_domain::text::address_key`].
//! - Two parties sharing a person, a phone, a payout bank account or a registered address are
//!   **related**: in every
//!   clause their dealings with each other are not subsidy basis (M2.2 operator and OPC, M2.3
//!   invoker and publisher, M2.4 enterprise and OPC) — at call time for skill calls
//!   ([`related_between`]) and again at settlement for everything.

use crate::{App, AppError, AppResult, Principal};
use opchub_domain::identity::PERSON_ROLES;
use opchub_domain::input::Checker;
use opchub_domain::Role;
use opchub_store::persons::{NewPerson, PartyAddress, PartyPerson, RelatedKind};
use opchub_store::Actor;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema, Default)]
pub struct PersonChange {
    /// `founder` (OPCs), `beneficial_owner`, or `controlling_person` (enterprises and community
    /// companies).
    pub role: Option<String>,
    /// The person's name (2–50 characters).
    pub name: Option<String>,
    /// 公民身份号码 (GB 11643-1999, 18 characters): validated, kept only as a keyed hash,
    /// never shown.
    pub id_number: Option<String>,
    /// A mainland mobile number (optional): kept only as a keyed hash.
    pub phone: Option<String>,
}

/// The roles a party of `kind` records.
pub fn roles_for(kind: &str) -> &'static [&'static str] {
    match kind {
        "opc" => &PERSON_ROLES[..2],
        "enterprise" | "community" => &PERSON_ROLES[1..],
        _ => &[],
    }
}

fn check_kind(kind: &str) -> AppResult<()> {
    if roles_for(kind).is_empty() {
        return Err(AppError::field("kind", "unknown_kind"));
    }
    Ok(())
}

/// The identity key, or an internal error when the app was built without one.
pub(crate) fn key(app: &App) -> AppResult<&crate::crypto::IdentityKey> {
    app.identity_key.as_ref().ok_or_else(|| {
        tracing::error!("no identity key: the app was built without the platform's secret key");
        AppError::internal()
    })
}

/// Records a person for a party as `actor` (the CLI, or a caller already allowed). Field
/// codes: `role` `required`/`unknown_role`/`role_not_for_kind`; `name` as text; `id_number`
/// `required`/`id_bad_length`/`id_bad_characters`/`id_bad_region`/`id_bad_birth_date`/
/// `id_bad_check_character`; `phone` `phone_not_digits`/`phone_bad_length`/`phone_bad_prefix`. The same person twice is a conflict.
pub async fn add_person_as(app: &App, actor: &Actor, kind: &str, id: &str, r: &PersonChange) -> AppResult<PartyPerson> {
    check_kind(kind)?;
    let mut c = Checker::new();
    let role = r.role.as_deref().map(str::trim).unwrap_or("");
    if role.is_empty() {
        c.fail("role", "required");
    } else if !PERSON_ROLES.contains(&role) {
        c.fail("role", "unknown_role");
    } else if !roles_for(kind).contains(&role) {
        c.fail("role", "role_not_for_kind");
    }
    let name = c.text("name", r.name.as_deref(), 2, 50);
    let number = c.resident_id("id_number", r.id_number.as_deref());
    let phone = c.mobile_phone("phone", r.phone.as_deref());
    let (Some(number), true) = (number, c.ok()) else {
        return Err(AppError::checked(c));
    };
    let k = key(app)?;
    let id_hash = k.hash("person", number.as_str());
    let phone_hash = phone.map(|p| k.hash("phone", p.as_str()));
    let person = app
        .store
        .add_party_person(
            actor,
            kind,
            id,
            &NewPerson {
                role,
                name: &name,
                id_hash: &id_hash,
                phone_hash: phone_hash.as_deref(),
            },
        )
        .await?;
    app.related.forget_all();
    Ok(person)
}

/// May `p` record or read the people of this party? Its owner, the committee, the platform
/// operator (and, reading, the auditor). The party must exist either way.
async fn may(app: &App, p: &Principal, kind: &str, id: &str, write: bool) -> AppResult<()> {
    check_kind(kind)?;
    let party = app.store.party_bank_account(kind, id).await?;
    let staff = matches!(p.user.role, Role::Committee | Role::PlatformOperator) || (!write && p.user.role == Role::Auditor);
    if !staff && party.owner_user_id != p.user.id {
        return Err(crate::party_facts::FactsError::NotOwner.into());
    }
    Ok(())
}

pub async fn add_person_for(app: &App, p: &Principal, kind: &str, id: &str, r: &PersonChange) -> AppResult<PartyPerson> {
    may(app, p, kind, id, true).await?;
    add_person_as(app, &p.actor(), kind, id, r).await
}

/// The people recorded for a party (names and roles; numbers are never shown).
pub async fn persons_for(app: &App, p: &Principal, kind: &str, id: &str) -> AppResult<Vec<PartyPerson>> {
    may(app, p, kind, id, false).await?;
    Ok(app.store.party_persons(id).await?)
}

pub async fn remove_person_for(app: &App, p: &Principal, kind: &str, id: &str, person_id: &str) -> AppResult<PartyPerson> {
    may(app, p, kind, id, true).await?;
    let person = app.store.remove_party_person(&p.actor(), id, person_id).await?;
    app.related.forget_all();
    Ok(person)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct AddressChange {
    /// 注册地址 / 住所 as on the business licence (5–200 characters).
    pub registered_address: Option<String>,
}

/// Checks a registered address: `registered_address` as text (5–200 characters) with at least
/// a few letters or digits to compare by.
pub fn check_address(c: &mut Checker, field: &str, v: Option<&str>) -> (String, String) {
    let address = c.text(field, v, 5, 200);
    let key = opchub_domain::text::address_key(&address);
    if (5..=200).contains(&address.chars().count()) && key.chars().count() < 4 {
        c.fail(field, "too_short");
    }
    (address, key)
}

/// Checks an optional registered address with the rest of a form (registration, a new
/// enterprise); returns the change to record once the party exists, when one was given.
pub fn check_optional_address(c: &mut Checker, v: Option<&str>) -> Option<AddressChange> {
    if v.is_none_or(|v| v.trim().is_empty()) {
        return None;
    }
    check_address(c, "registered_address", v);
    Some(AddressChange {
        registered_address: v.map(str::to_string),
    })
}

fn address_kind(kind: &str) -> AppResult<()> {
    if ["opc", "enterprise"].contains(&kind) {
        Ok(())
    } else {
        Err(AppError::field("kind", "unknown_kind"))
    }
}

/// Records a party's registered address as `actor` (`kind`: `opc` or `enterprise`; a
/// community's company is `unknown_kind`: its OPCs are registered at its address by design).
pub async fn set_address_as(app: &App, actor: &Actor, kind: &str, id: &str, r: &AddressChange) -> AppResult<PartyAddress> {
    address_kind(kind)?;
    let mut c = Checker::new();
    let (address, key) = check_address(&mut c, "registered_address", r.registered_address.as_deref());
    if !c.ok() {
        return Err(AppError::checked(c));
    }
    let set = app.store.set_party_address(actor, kind, id, &address, &key).await?;
    // A shared address relates two parties (issue 18 item 1).
    app.related.forget_all();
    Ok(set)
}

/// The owner, the committee or the platform operator records a party's registered address.
pub async fn set_address_for(app: &App, p: &Principal, kind: &str, id: &str, r: &AddressChange) -> AppResult<PartyAddress> {
    address_kind(kind)?;
    may(app, p, kind, id, true).await?;
    set_address_as(app, &p.actor(), kind, id, r).await
}

/// A party's registered address, for whoever may read its people.
pub async fn address_for(app: &App, p: &Principal, kind: &str, id: &str) -> AppResult<PartyAddress> {
    address_kind(kind)?;
    may(app, p, kind, id, false).await?;
    Ok(app.store.party_address(kind, id).await?)
}

/// The registered addresses of the caller's own OPC and enterprise among `parties` (the page
/// beside the bank accounts, which has read them).
pub async fn addresses_of(app: &App, parties: &[opchub_store::party_facts::PartyBankAccount]) -> AppResult<Vec<PartyAddress>> {
    let mut out = vec![];
    for party in parties {
        if ["opc", "enterprise"].contains(&party.kind.as_str()) {
            out.push(app.store.party_address(&party.kind, &party.id).await?);
        }
    }
    Ok(out)
}

/// The caller's own parties, each with its recorded people (the page beside the bank accounts).
pub async fn my_persons(app: &App, p: &Principal) -> AppResult<Vec<(String, String, Vec<PartyPerson>)>> {
    let mut out = vec![];
    for party in app.store.bank_accounts_of_owner(&p.user.id).await? {
        let persons = app.store.party_persons(&party.id).await?;
        out.push((party.kind, party.id, persons));
    }
    Ok(out)
}

/// Why two parties are related (`person`, `phone`, `bank_account`), if they are; read through
/// a short-lived cache, since every skill call asks (M2.3).
pub async fn related_between(app: &App, a: &str, b: &str) -> AppResult<Option<RelatedKind>> {
    if a == b {
        return Ok(None);
    }
    if let Some(hit) = app.related.get(a, b) {
        return Ok(hit);
    }
    let kind = app.store.related_between(a, b).await?;
    app.related.put(a, b, kind);
    Ok(kind)
}

/// Related-party answers of the last seconds, by unordered pair. Changes made through this
/// process forget them at once; another replica's change is seen within [`RelatedCache::TTL`].
#[derive(Default)]
pub struct RelatedCache {
    map: std::sync::Mutex<std::collections::HashMap<(String, String), CachedTie>>,
}

/// A related-party answer and when it was read.
type CachedTie = (Option<RelatedKind>, std::time::Instant);

impl RelatedCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(30);
    const MAX: usize = 100_000;

    fn pair(a: &str, b: &str) -> (String, String) {
        if a <= b {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        }
    }

    pub fn get(&self, a: &str, b: &str) -> Option<Option<RelatedKind>> {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&Self::pair(a, b)).filter(|(_, at)| at.elapsed() < Self::TTL).map(|(k, _)| *k)
    }

    pub fn put(&self, a: &str, b: &str, kind: Option<RelatedKind>) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= Self::MAX {
            m.clear();
        }
        m.insert(Self::pair(a, b), (kind, std::time::Instant::now()));
    }

    pub fn forget_all(&self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
