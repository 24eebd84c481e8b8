//! Sign-in with the organisation's identity provider (SPEC §9), the
//! routes under `/auth`: `login` sends the browser to the provider,
//! `callback` turns its answer into a session, `session` tells the web app
//! who is signed in, `logout` ends it. The protocol is `oidc`'s; sessions
//! are `sessions`'.
//!
//! A person's user is the value of `username_claim`; a first sign-in
//! creates it (with `defaults`, and the team `team_claim` names when that
//! team exists) when `auto_create` is on; members of `admin_groups` reach
//! the admin console. A refused sign-in goes back to the sign-in page with
//! the reason (`/?sign_in_error=…`).

use crate::audit::Actor;
use crate::config::OidcConfig;
use crate::db;
use crate::oidc::{self, OidcError};
use crate::sessions::{self, Pending, COOKIE};
use crate::state::Gateway;
use crate::users::{self, UserError, UserName, UserSettings};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The cookie that ties a callback to the browser that began the sign-in.
const SIGN_IN_COOKIE: &str = "chatgate_sign_in";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::get().to(login))
        .route("/auth/callback", web::get().to(callback))
        .route("/auth/session", web::get().to(session))
        .route("/auth/logout", web::post().to(logout));
}

/// What `config check` and start refuse: each message names its field.
pub fn check_config(o: &OidcConfig) -> Result<(), String> {
    let issuer = url::Url::parse(&o.issuer)
        .map_err(|e| format!("issuer: `{}` is not a URL ({e})", o.issuer))?;
    let loopback = match issuer.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if issuer.scheme() != "https" && !(issuer.scheme() == "http" && loopback) {
        return Err(format!(
            "issuer: `{}` must be https:// (http:// only on a loopback host)",
            o.issuer
        ));
    }
    if o.client_id.is_empty() || o.client_secret.is_empty() {
        return Err("client_id and client_secret: both are needed".into());
    }
    if !o.scopes.iter().any(|s| s == "openid") {
        return Err("scopes: must include `openid`".into());
    }
    let defaults = new_user_settings(o, None).map_err(|e| format!("defaults: {e}"))?;
    if defaults.disabled.is_some() {
        return Err("defaults: `disabled` is not a default".into());
    }
    Ok(())
}

/// A new user's settings: `defaults`, and the team when given.
fn new_user_settings(o: &OidcConfig, team: Option<String>) -> Result<UserSettings, String> {
    let mut defaults = o.defaults.clone();
    if defaults.contains_key("team") {
        return Err("`team` comes from team_claim".into());
    }
    if let Some(t) = team {
        defaults.insert("team".into(), Value::String(t));
    }
    UserSettings::from_json(Value::Object(defaults))
}

fn config(gw: &Gateway) -> Option<OidcConfig> {
    gw.live().config.web.oidc.clone()
}

/// `{public_url}/auth/callback`, else the request's own origin's.
fn redirect_uri(req: &HttpRequest, gw: &Gateway) -> String {
    let base = match &gw.live().config.web.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let here = req.connection_info();
            format!("{}://{}", here.scheme(), here.host())
        }
    };
    format!("{base}/auth/callback")
}

/// Back to the sign-in page with `why` in an alert.
fn refused(why: &str) -> HttpResponse {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("sign_in_error", why)
        .finish();
    HttpResponse::Found()
        .insert_header((header::LOCATION, format!("/?{q}#/account")))
        .finish()
}

fn not_configured() -> HttpResponse {
    crate::error::error_body(
        actix_web::http::StatusCode::NOT_FOUND,
        "Sign-in with an identity provider is not configured here (web.oidc).",
        "invalid_request_error",
        "not_found",
    )
}

async fn login(req: HttpRequest, gw: web::Data<Gateway>) -> HttpResponse {
    let Some(o) = config(&gw) else {
        return not_configured();
    };
    let d = match gw.oidc.discovery(&o.issuer).await {
        Ok(d) => d,
        Err(e) => return refused(&e.to_string()),
    };
    let state = oidc::random();
    let pending = Pending {
        nonce: oidc::random(),
        verifier: oidc::random(),
        redirect_uri: redirect_uri(&req, &gw),
    };
    let to = match oidc::authorize_url(
        &d,
        &o,
        &pending.redirect_uri,
        &state,
        &pending.nonce,
        &pending.verifier,
    ) {
        Ok(u) => u,
        Err(e) => return refused(&e.to_string()),
    };
    let kept = state.clone();
    if let Err(e) = db::query(&gw.pool, move |c| {
        sessions::begin_sign_in(c, &kept, &pending)
    })
    .await
    {
        tracing::warn!("cannot begin a sign-in: {e}");
        return refused("The gateway's database is not reachable.");
    }
    let secure = sessions::over_tls(&req, &gw);
    HttpResponse::Found()
        .cookie(sessions::cookie(
            SIGN_IN_COOKIE,
            state,
            "/auth",
            Duration::from_secs(600),
            secure,
        ))
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Who the provider says signed in.
struct Person {
    username: String,
    groups: Vec<String>,
    team: Option<String>,
}

fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn person(o: &OidcConfig, claims: &Map<String, Value>) -> Result<Person, String> {
    let username = claim_text(claims, &o.username_claim).ok_or_else(|| {
        format!(
            "The identity provider did not say who you are (no `{}` claim): ask your admin to release it to the gateway.",
            o.username_claim
        )
    })?;
    let groups = match claims.get(&o.groups_claim) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let team = o.team_claim.as_deref().and_then(|c| claim_text(claims, c));
    Ok(Person {
        username,
        groups,
        team,
    })
}

async fn callback(
    req: HttpRequest,
    gw: web::Data<Gateway>,
    q: web::Query<CallbackQuery>,
) -> HttpResponse {
    let Some(o) = config(&gw) else {
        return not_configured();
    };
    let secure = sessions::over_tls(&req, &gw);
    let mut res = match sign_in(&req, &gw, &o, q.into_inner()).await {
        Ok((id, admin)) => HttpResponse::Found()
            .cookie(sessions::cookie(
                COOKIE,
                id,
                "/",
                gw.live().config.web.session_ttl,
                secure,
            ))
            .insert_header((
                header::LOCATION,
                if admin { "/#/admin" } else { "/#/account" },
            ))
            .finish(),
        Err(why) => refused(&why),
    };
    // The sign-in is over either way.
    let _ = res.add_cookie(&sessions::cookie(
        SIGN_IN_COOKIE,
        String::new(),
        "/auth",
        Duration::ZERO,
        secure,
    ));
    res
}

/// The callback's checks, then the session: its cookie id and whether
/// the person is an admin; else why not, for the person to read.
async fn sign_in(
    req: &HttpRequest,
    gw: &Gateway,
    o: &OidcConfig,
    q: CallbackQuery,
) -> Result<(String, bool), String> {
    if let Some(e) = q.error {
        let more = q
            .error_description
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(format!(
            "The identity provider refused the sign-in ({e}{more})."
        ));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Err("The identity provider's answer has no code and state; sign in again.".into());
    };
    // The state must be the one this browser was given, and unused.
    let ours = req.cookie(SIGN_IN_COOKIE).map(|c| c.value().to_owned());
    if ours.as_deref() != Some(state.as_str()) {
        return Err("This sign-in was not started in this browser (its state does not match); sign in again.".into());
    }
    let pending = db::query(&gw.pool, move |c| sessions::take_sign_in(c, &state))
        .await
        .map_err(|_| "The gateway's database is not reachable.".to_string())?
        .ok_or("This sign-in expired or was already used; sign in again.")?;
    let claims = verified_claims(gw, o, &code, &pending)
        .await
        .map_err(|e| format!("Sign-in failed: {e}."))?;
    let who = person(o, &claims)?;
    let admin = who.groups.iter().any(|g| o.admin_groups.contains(g));
    let (o2, ttl) = (o.clone(), gw.live().config.web.session_ttl);
    let id = db::run(&gw.pool, move |c| {
        let user = user_for(c, &o2, &who)?;
        sessions::create(c, &user, &who.username, admin, ttl).map_err(|e| Refusal::Db(e.into()))
    })
    .await
    .map_err(|e: Refusal| e.to_string())?;
    Ok((id, admin))
}

/// The ID token's claims, checked, with the userinfo's added (where many
/// providers put `email` and `groups`) when its subject is the same.
async fn verified_claims(
    gw: &Gateway,
    o: &OidcConfig,
    code: &str,
    pending: &Pending,
) -> Result<Map<String, Value>, OidcError> {
    let d = gw.oidc.discovery(&o.issuer).await?;
    let tokens = oidc::exchange(&d, o, code, &pending.redirect_uri, &pending.verifier).await?;
    let mut claims = gw
        .oidc
        .verify(&d, o, &tokens.id_token, &pending.nonce)
        .await?;
    if let Some(access) = &tokens.access_token {
        let info = oidc::userinfo(&d, access).await?;
        if info.get("sub").is_some() && info.get("sub") != claims.get("sub") {
            return Err(OidcError::Protocol(
                "the userinfo is about someone else".into(),
            ));
        }
        for (k, v) in info {
            claims.entry(k).or_insert(v);
        }
    }
    Ok(claims)
}

#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("Your user `{0}` is disabled; ask the gateway's admin.")]
    Disabled(String),
    #[error("There is no user `{0}` here, and this gateway does not create users at sign-in; ask its admin.")]
    Unknown(String),
    #[error("You cannot have a user here: {0}")]
    BadName(String),
    #[error("{0}")]
    User(#[from] UserError),
    #[error("The gateway's database is not reachable.")]
    Db(#[from] db::DbError),
}

/// The person's user: theirs, or made now (one audited change).
fn user_for(conn: &mut db::DbConnection, o: &OidcConfig, who: &Person) -> Result<String, Refusal> {
    match users::show(conn, &who.username) {
        Ok(u) if u.status == users::Status::Disabled => Err(Refusal::Disabled(u.name)),
        Ok(u) => Ok(u.name),
        Err(UserError::NotFound(_)) if o.auto_create => {
            let name = UserName::parse(&who.username).map_err(Refusal::BadName)?;
            let team = match &who.team {
                Some(t) if crate::teams::id_of(conn, t).is_ok() => Some(t.clone()),
                _ => None,
            };
            let settings = new_user_settings(o, team)
                .map_err(|e| Refusal::BadName(format!("web.oidc.defaults: {e}")))?;
            let by = Actor::Oidc(who.username.clone());
            // Their first key is never shown: they make their own on the Keys page.
            users::add(conn, &by, &name, None, settings)?;
            Ok(name.as_str().to_owned())
        }
        Err(UserError::NotFound(_)) => Err(Refusal::Unknown(who.username.clone())),
        Err(e) => Err(e.into()),
    }
}

/// Who is signed in, for the web app: `{"sso": button name or null,
/// "user", "admin", "csrf"}` (no user: not signed in).
async fn session(req: HttpRequest, gw: web::Data<Gateway>) -> HttpResponse {
    let sso = config(&gw).map(|o| o.name);
    let body = match sessions::of_request(&req, &gw).await {
        Ok(Some(s)) => json!({"sso": sso, "user": s.user, "admin": s.admin, "csrf": s.csrf}),
        Ok(None) => json!({"sso": sso, "user": null}),
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// "Sign out": ends the session (with its CSRF token) and its cookie.
async fn logout(req: HttpRequest, gw: web::Data<Gateway>) -> HttpResponse {
    if let Err(e) = sessions::of_request(&req, &gw).await {
        return actix_web::ResponseError::error_response(&e);
    }
    if let Some(id) = req.cookie(COOKIE).map(|c| c.value().to_owned()) {
        if let Err(e) = db::query(&gw.pool, move |c| sessions::end(c, &id)).await {
            return actix_web::ResponseError::error_response(&crate::error::ApiError::from(e));
        }
    }
    let secure = sessions::over_tls(&req, &gw);
    HttpResponse::NoContent()
        .cookie(sessions::cookie(
            COOKIE,
            String::new(),
            "/",
            Duration::ZERO,
            secure,
        ))
        .finish()
}
