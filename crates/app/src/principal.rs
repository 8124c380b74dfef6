//! Who is acting: an authenticated user and how they came in (a session, an API key, a
//! ledger source key). Every use case that checks a caller takes a [`Principal`]; the web
//! layer builds it from the request, the CLI from the account it acts as.

use opchub_domain::Role;
use opchub_store::accounts::User;

#[derive(Debug, Clone)]
pub enum Via {
    Session {
        csrf: String,
    },
    ApiKey {
        key_id: String,
        scopes: Vec<String>,
    },
    /// A usage-ledger source key (`ols_…`): may only submit events.
    Source {
        name: String,
        rate_per_minute: i64,
        /// The kinds the source is registered to report (issue 18 item 4).
        kinds: Vec<String>,
    },
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub via: Via,
}

impl Principal {
    pub fn role(&self) -> Role {
        self.user.role
    }
    pub fn actor(&self) -> opchub_store::Actor {
        opchub_store::Actor::user(&self.user.id, self.user.role.as_str())
    }
    /// A principal for work the CLI does on a user's behalf (demo loading, imports).
    pub fn cli(user: User) -> Self {
        Principal {
            user,
            via: Via::Session { csrf: String::new() },
        }
    }
}
