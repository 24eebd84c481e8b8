//! Sessions of people signed in with the identity provider (SPEC §9), in
//! the database so every instance shares them: a random id in an
//! `HttpOnly`, `SameSite=Lax` cookie (stored only as its SHA-256), ended
//! by `web.session_ttl`, by "Sign out", and at once when the user is
//! disabled or removed (each request reads the user with the session).
//! A change made with the cookie must carry the session's CSRF token.
//!
//! Also the sign-ins under way (state, nonce, PKCE verifier), which the
//! provider's callback may bring to another instance.

use crate::audit::Actor;
use crate::db::moment::At;
use crate::db::schema::{sessions, sign_ins, users};
use crate::db::{self, DbConnection};
use crate::error::ApiError;
use crate::state::Gateway;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::Method;
use actix_web::HttpRequest;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The session cookie.
pub const COOKIE: &str = "chatgate_session";
/// The header a change made with the cookie carries.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    /// Their chatgate user.
    pub user: String,
    /// The name the identity provider gave (the audit trail's actor).
    pub username: String,
    pub admin: bool,
    pub csrf: String,
}

impl Session {
    pub fn actor(&self) -> Actor {
        Actor::Oidc(self.username.clone())
    }
}

fn hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn after(ttl: Duration) -> At {
    At(db::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12)))
}

/// Starts a session; returns the cookie's id (shown once, to the browser).
pub fn create(
    conn: &mut DbConnection,
    user: &str,
    username: &str,
    admin: bool,
    ttl: Duration,
) -> QueryResult<String> {
    let id = crate::oidc::random();
    // Ended sessions and abandoned sign-ins go as new ones come.
    diesel::delete(sessions::table.filter(sessions::expires_at.lt(At(db::now())))).execute(conn)?;
    diesel::delete(sign_ins::table.filter(sign_ins::expires_at.lt(At(db::now())))).execute(conn)?;
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(hash(&id)),
            sessions::user_name.eq(user),
            sessions::username.eq(username),
            sessions::admin.eq(admin),
            sessions::csrf.eq(crate::oidc::random()),
            sessions::expires_at.eq(after(ttl)),
        ))
        .execute(conn)?;
    Ok(id)
}

/// The live session of cookie id `id`: not ended, its user there and
/// not disabled.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Session>> {
    let row: Option<(String, String, bool, String)> = sessions::table
        .inner_join(users::table.on(users::name.eq(sessions::user_name)))
        .filter(sessions::id_hash.eq(hash(id)))
        .filter(sessions::expires_at.gt(At(db::now())))
        .filter(users::disabled.eq(false))
        .select((
            sessions::user_name,
            sessions::username,
            sessions::admin,
            sessions::csrf,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(user, username, admin, csrf)| Session {
        user,
        username,
        admin,
        csrf,
    }))
}

/// Ends the session of cookie id `id` ("Sign out").
pub fn end(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.filter(sessions::id_hash.eq(hash(id))))
        .execute(conn)
        .map(drop)
}

/// A sign-in under way.
pub struct Pending {
    pub nonce: String,
    pub verifier: String,
    pub redirect_uri: String,
}

/// Keeps a sign-in's secrets for its callback (10 minutes at most).
pub fn begin_sign_in(conn: &mut DbConnection, state: &str, p: &Pending) -> QueryResult<()> {
    diesel::insert_into(sign_ins::table)
        .values((
            sign_ins::state.eq(state),
            sign_ins::nonce.eq(&p.nonce),
            sign_ins::verifier.eq(&p.verifier),
            sign_ins::redirect_uri.eq(&p.redirect_uri),
            sign_ins::expires_at.eq(after(Duration::from_secs(600))),
        ))
        .execute(conn)
        .map(drop)
}

/// The sign-in of `state`, once: a replayed callback finds nothing.
pub fn take_sign_in(conn: &mut DbConnection, state: &str) -> QueryResult<Option<Pending>> {
    crate::db::transaction(conn, |conn| {
        let row: Option<(String, String, String)> = sign_ins::table
            .filter(sign_ins::state.eq(state))
            .filter(sign_ins::expires_at.gt(At(db::now())))
            .select((sign_ins::nonce, sign_ins::verifier, sign_ins::redirect_uri))
            .first(conn)
            .optional()?;
        diesel::delete(sign_ins::table.filter(sign_ins::state.eq(state))).execute(conn)?;
        Ok(row.map(|(nonce, verifier, redirect_uri)| Pending {
            nonce,
            verifier,
            redirect_uri,
        }))
    })
}

/// The request's session, if it has a cookie for a live one. A change
/// (any method but GET and HEAD) must carry the session's CSRF token;
/// without it the request is refused, so that another site cannot make
/// a signed-in browser act.
pub async fn of_request(req: &HttpRequest, gw: &Gateway) -> Result<Option<Session>, ApiError> {
    if gw.live().config.web.oidc.is_none() {
        return Ok(None);
    }
    let Some(id) = req.cookie(COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    let session = db::query(&gw.pool, move |c| find(c, &id)).await?;
    let Some(session) = session else {
        return Ok(None);
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let given = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !crate::keys::same_secret(given, &session.csrf) {
            return Err(ApiError::Csrf);
        }
    }
    Ok(Some(session))
}

/// Whether the browser reached us over TLS (directly, or as the
/// configured public URL says).
pub fn over_tls(req: &HttpRequest, gw: &Gateway) -> bool {
    match &gw.live().config.web.public_url {
        Some(u) => u.starts_with("https://"),
        None => req.connection_info().scheme() == "https",
    }
}

/// A cookie as sign-in sets them: `HttpOnly`, `SameSite=Lax`, `Secure`
/// over TLS; `max_age` zero ends it.
pub fn cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    max_age: Duration,
    secure: bool,
) -> Cookie<'static> {
    let mut c = Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish();
    c.set_max_age(actix_web::cookie::time::Duration::seconds(
        max_age.as_secs() as i64,
    ));
    c
}

/// Who asks about their own account (`/v1/me…`): by key, else by session.
pub struct Me {
    pub user: String,
    /// The label of the key they ask with (none with a session).
    pub via: Option<String>,
    pub by: Actor,
}

pub async fn me(req: &HttpRequest, gw: &Gateway) -> Result<Me, ApiError> {
    use crate::proxy::auth;
    if auth::presented_key(req.headers(), req.query_string()).is_some() {
        let caller = auth::authenticate_request(gw, req)?;
        return Ok(Me {
            user: caller.user.name.to_string(),
            via: Some(caller.key.to_string()),
            by: Actor::User(caller.user.name.to_string()),
        });
    }
    match of_request(req, gw).await? {
        Some(s) => Ok(Me {
            by: s.actor(),
            user: s.user,
            via: None,
        }),
        None => Err(ApiError::InvalidKey(crate::error::NO_KEY)),
    }
}
