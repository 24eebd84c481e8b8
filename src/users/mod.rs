//! Users and their keys: what a user is given (`settings`), how one is
//! stored and shown (`view`), the operations on them (`store`), and the
//! config file's users (`seed`).

pub mod keys;
mod seed;
mod settings;
mod store;
mod view;

pub use crate::db::rfc3339;
use crate::db::DbError;
pub use crate::limits::LimitPeriod;
pub use seed::{seed, UserSeed};
pub use settings::{
    json_usd_amount, parse_count, parse_expiry, parse_models, parse_note, parse_team, parse_usd,
    usd_to_nano, Setting, UserName, UserSettings,
};
pub use store::{
    add, add_many, all_rows, deleted_after, list, recharge, remove, rotate, rows_changed_after,
    show, taken, update, TopUp,
};
pub use view::{decode_models, encode_models, Status, UserRow, UserView};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no user named `{0}`")]
    NotFound(String),
    #[error("a user named `{0}` already exists")]
    Exists(String),
    #[error("that key is already in use; choose another")]
    KeyInUse,
    #[error("`{name}` has no {what} to top up; set one with `user edit {name} --{flag} N`")]
    NoLimit {
        name: String,
        what: &'static str,
        flag: &'static str,
    },
    #[error("give --tokens, --requests or --usd (any of them), each above 0")]
    NothingToRecharge,
    #[error("`{user}` has no key labelled (or with the hint) `{which}`")]
    KeyNotFound { user: String, which: String },
    #[error("more than one key has the hint `{0}`; give its label")]
    AmbiguousHint(String),
    #[error("`{0}` has several keys and none labelled `default`; say which with --label")]
    WhichKey(String),
    #[error("a key labelled `{0}` exists already; choose another label")]
    LabelTaken(String),
    #[error("you have {0} keys, the most allowed; revoke one first")]
    TooManyKeys(usize),
    #[error("a key's models can only narrow your own")]
    WiderModels,
    #[error("`{0}` is a user's setting; teams do not have it")]
    NotForTeams(&'static str),
    #[error("{0}")]
    BadTeamName(String),
    #[error("no team named `{0}`")]
    TeamNotFound(String),
    #[error("a team named `{0}` already exists")]
    TeamExists(String),
    #[error("team `{name}` still has members ({}); move or remove them first", members.join(", "))]
    TeamNotEmpty { name: String, members: Vec<String> },
    #[error("the change was not written to the audit trail")]
    Unaudited,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for UserError {
    fn from(e: diesel::result::Error) -> UserError {
        UserError::Db(DbError::Query(e))
    }
}
