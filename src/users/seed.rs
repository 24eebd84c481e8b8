//! The config file's `users:`, added at start if absent (so a deployment
//! can be set up from its config alone).

use super::settings::{UserName, UserSettings};
use super::{store, UserError};
use crate::db::DbConnection;
use crate::keys::PlainKey;

/// A user of the config file's `users:`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    pub name: String,
    pub token: String,
}

/// Adds the seeds that do not exist yet; returns their names.
pub fn seed(conn: &mut DbConnection, seeds: &[UserSeed]) -> Result<Vec<String>, UserError> {
    let mut added = Vec::new();
    for s in seeds {
        if store::exists(conn, &s.name)? {
            continue;
        }
        // Validated with the config; parse again rather than trust.
        let (Ok(name), Ok(key)) = (UserName::parse(&s.name), PlainKey::parse(&s.token)) else {
            continue;
        };
        store::add(
            conn,
            &crate::audit::Actor::Config,
            &name,
            Some(key),
            UserSettings::default(),
        )?;
        added.push(s.name.clone());
    }
    Ok(added)
}
