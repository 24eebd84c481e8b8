//! The admin HTTP API (`/admin/*`), on only when `admin.token` is set. Each
//! operation calls the same function in `users` (or `teams`,
//! `usage::report`) that the CLI calls; only the parsing of input differs.
//! Users here; teams and keys in `teams`.

mod teams;

use crate::audit::Actor;
use crate::db;
use crate::error::error_body;
use crate::keys::PlainKey;
use crate::state::Gateway;
use crate::usage::report;
use crate::users::{self, UserError, UserName, UserSettings};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Unreadable bodies answer in the same shape as every other error.
    let json = web::JsonConfig::default()
        .error_handler(|e, _| bad(format!("The request body is not valid: {e}")).into());
    let query = web::QueryConfig::default()
        .error_handler(|e, _| bad(format!("The query is not valid: {e}")).into());
    cfg.app_data(json)
        .app_data(query)
        .route("/users", web::get().to(list))
        .route("/users", web::post().to(create))
        .route("/users/{name}", web::get().to(show))
        .route("/users/{name}", web::patch().to(edit))
        .route("/users/{name}", web::delete().to(remove))
        .route("/users/{name}/rotate", web::post().to(rotate))
        .route("/users/{name}/recharge", web::post().to(recharge))
        .route("/usage", web::get().to(usage))
        .route("/audit", web::get().to(audit_list));
    teams::configure(cfg);
}

/// Errors of the admin API, OpenAI-shaped like the rest.
pub struct AdminError(StatusCode, String, &'static str);

/// The status and error code of a refused change, the same for the admin
/// API and self-service (`/v1/me/keys`); `None` for a database failure.
pub fn refusal(e: &UserError) -> Option<(StatusCode, &'static str)> {
    Some(match e {
        UserError::NotFound(_) => (StatusCode::NOT_FOUND, "user_not_found"),
        UserError::TeamNotFound(_) | UserError::KeyNotFound { .. } => {
            (StatusCode::NOT_FOUND, "not_found")
        }
        UserError::Exists(_) | UserError::KeyInUse | UserError::TeamExists(_) => {
            (StatusCode::CONFLICT, "conflict")
        }
        UserError::LabelTaken(_) => (StatusCode::CONFLICT, "label_taken"),
        UserError::TooManyKeys(_) => (StatusCode::CONFLICT, "too_many_keys"),
        UserError::TeamNotEmpty { .. } => (StatusCode::CONFLICT, "team_not_empty"),
        UserError::WiderModels => (StatusCode::FORBIDDEN, "model_not_allowed"),
        UserError::NoLimit { .. }
        | UserError::NothingToRecharge
        | UserError::AmbiguousHint(_)
        | UserError::WhichKey(_)
        | UserError::NotForTeams(_)
        | UserError::BadTeamName(_) => (StatusCode::BAD_REQUEST, "invalid_request_error"),
        UserError::Db(_) | UserError::Unaudited => return None,
    })
}

impl From<UserError> for AdminError {
    fn from(e: UserError) -> AdminError {
        match refusal(&e) {
            Some((status, code)) => AdminError(status, e.to_string(), code),
            None => {
                tracing::error!("admin API: {e}");
                AdminError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is not reachable.".into(),
                    "service_unavailable",
                )
            }
        }
    }
}

pub(super) fn invalid_body(why: String) -> AdminError {
    bad(format!("The request body is not valid: {why}"))
}

pub(super) fn bad(message: impl Into<String>) -> AdminError {
    AdminError(
        StatusCode::BAD_REQUEST,
        message.into(),
        "invalid_request_error",
    )
}

impl actix_web::ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        self.0
    }

    fn error_response(&self) -> HttpResponse {
        error_body(self.0, &self.1, "invalid_request_error", self.2)
    }
}

impl std::fmt::Debug for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

/// Proof that the request comes from the admin, and who they are for the
/// audit trail. As the first parameter of every admin handler it runs
/// before any other extractor, so an unauthenticated request is refused
/// before its body is read.
pub struct Admin(pub Actor);

impl actix_web::FromRequest for Admin {
    type Error = AdminError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Admin, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            // The token when one is presented, else an admin's session.
            if req.headers().contains_key(header::AUTHORIZATION) {
                return authorize(&req).map(|()| Admin(Actor::AdminToken));
            }
            let Some(gw) = req.app_data::<web::Data<Gateway>>() else {
                return authorize(&req).map(|()| Admin(Actor::AdminToken));
            };
            match crate::sessions::of_request(&req, gw).await {
                Ok(Some(s)) if s.admin => Ok(Admin(s.actor())),
                Ok(Some(_)) => Err(AdminError(
                    StatusCode::FORBIDDEN,
                    "You are signed in, but not in one of the gateway's admin groups (web.oidc.admin_groups).".into(),
                    "permission_error",
                )),
                Ok(None) => authorize(&req).map(|()| Admin(Actor::AdminToken)),
                Err(e) => Err(AdminError(
                    actix_web::ResponseError::status_code(&e),
                    e.to_string(),
                    e.code(),
                )),
            }
        })
    }
}

/// Checks `Authorization: Bearer ADMIN_TOKEN` (the scheme in any case) in
/// constant time: both sides are hashed first, so neither content nor
/// length shows in the timing.
fn authorize(req: &HttpRequest) -> Result<(), AdminError> {
    let refused = || {
        AdminError(
            StatusCode::UNAUTHORIZED,
            "A valid admin token is needed: Authorization: Bearer ADMIN_TOKEN.".into(),
            "invalid_api_key",
        )
    };
    let gw = req.app_data::<web::Data<Gateway>>().ok_or_else(refused)?;
    let live = gw.live();
    // Failed attempts are counted per client address, as for keys.
    let now = std::time::Instant::now();
    let addr = crate::throttle::client_address(req, &live.trusted);
    if let Some(addr) = addr {
        gw.throttle.check(addr, now).map_err(|wait| {
            AdminError(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed attempts from your address; try again in {wait} s."),
                "rate_limit_exceeded",
            )
        })?;
    }
    let expected = live
        .config
        .admin
        .as_ref()
        .and_then(|a| a.token.as_deref())
        .unwrap_or_default();
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or_default();
    if expected.is_empty() || !crate::keys::same_secret(expected, given) {
        if let Some(addr) = addr {
            gw.throttle.failed(addr, now);
        }
        return Err(refused());
    }
    Ok(())
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default = "yes")]
    all: bool,
}

fn yes() -> bool {
    true
}

async fn list(
    _admin: Admin,
    gw: web::Data<Gateway>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AdminError> {
    let all = q.all;
    let list = db::run(&gw.pool, move |c| users::list(c, all)).await?;
    Ok(HttpResponse::Ok().json(list))
}

async fn create(
    Admin(by): Admin,
    gw: web::Data<Gateway>,
    body: web::Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, AdminError> {
    // `name` and `token`, then the settings, whose unknown fields are
    // refused (serde's flatten would let them pass silently).
    let mut body = body.into_inner();
    let mut text = |field: &str| match body.remove(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("`{field}` must be a string"))),
    };
    let name = text("name")?.ok_or_else(|| bad("`name` is required"))?;
    let token = text("token")?;
    let name = UserName::parse(&name).map_err(|e| bad(format!("`name`: {e}")))?;
    let key = token
        .as_deref()
        .map(PlainKey::parse)
        .transpose()
        .map_err(|e| bad(format!("`token`: {e}")))?;
    let settings =
        UserSettings::from_json(serde_json::Value::Object(body)).map_err(invalid_body)?;
    let shown = name.clone();
    let key = db::run(&gw.pool, move |c| users::add(c, &by, &name, key, settings)).await?;
    Ok(HttpResponse::Created().json(json!({"name": shown.as_str(), "key": key.expose()})))
}

async fn show(
    _admin: Admin,
    gw: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    Ok(HttpResponse::Ok().json(db::run(&gw.pool, move |c| users::show(c, &name)).await?))
}

async fn edit(
    Admin(by): Admin,
    gw: web::Data<Gateway>,
    name: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let settings = UserSettings::from_json(body.into_inner()).map_err(invalid_body)?;
    let user = db::run(&gw.pool, move |c| users::update(c, &by, &name, settings)).await?;
    Ok(HttpResponse::Ok().json(user))
}

async fn remove(
    Admin(by): Admin,
    gw: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    db::run(&gw.pool, move |c| users::remove(c, &by, &name)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    token: Option<String>,
}

async fn rotate(
    Admin(by): Admin,
    gw: web::Data<Gateway>,
    name: web::Path<String>,
    body: Option<web::Json<RotateBody>>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let key = body
        .and_then(|b| b.into_inner().token)
        .as_deref()
        .map(PlainKey::parse)
        .transpose()
        .map_err(|e| bad(format!("`token`: {e}")))?;
    let shown = name.clone();
    let key = db::run(&gw.pool, move |c| users::rotate(c, &by, &name, key)).await?;
    Ok(HttpResponse::Ok().json(json!({"name": shown, "key": key.expose()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RechargeBody {
    #[serde(default)]
    tokens: Option<i64>,
    #[serde(default)]
    requests: Option<i64>,
    /// USD to add to the budget.
    #[serde(default)]
    usd: Option<f64>,
}

async fn recharge(
    Admin(by): Admin,
    gw: web::Data<Gateway>,
    name: web::Path<String>,
    body: web::Json<RechargeBody>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let top_up = body.into_inner().top_up()?;
    let user = db::run(&gw.pool, move |c| users::recharge(c, &by, &name, top_up)).await?;
    Ok(HttpResponse::Ok().json(user))
}

impl RechargeBody {
    pub(super) fn top_up(self) -> Result<users::TopUp, AdminError> {
        let usd = self
            .usd
            .map(users::json_usd_amount)
            .transpose()
            .map_err(|e| bad(format!("`usd`: {e}")))?;
        Ok(users::TopUp {
            tokens: self.tokens,
            requests: self.requests,
            usd,
        })
    }
}

async fn usage(
    _admin: Admin,
    gw: web::Data<Gateway>,
    q: web::Query<report::Params>,
) -> Result<HttpResponse, AdminError> {
    let query = q.into_inner().into_query(crate::db::now()).map_err(bad)?;
    let by = query.by.clone();
    let rows = db::query(&gw.pool, move |c| report::run(c, &query))
        .await
        .map_err(UserError::from)?;
    Ok(HttpResponse::Ok().json(report::to_json(&rows, &by)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    since: Option<String>,
    until: Option<String>,
    actor: Option<String>,
    target: Option<String>,
    /// Only the newest this many.
    limit: Option<i64>,
}

/// The audit trail, with `audit list`'s filters.
async fn audit_list(
    _admin: Admin,
    gw: web::Data<Gateway>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, AdminError> {
    let q = q.into_inner();
    let mut filter =
        crate::audit::Filter::parse(q.since.as_deref(), q.until.as_deref(), q.actor, q.target)
            .map_err(|e| bad(format!("The query is not valid: {e}")))?;
    filter.limit = q.limit;
    let rows = db::query(&gw.pool, move |c| crate::audit::list(c, &filter))
        .await
        .map_err(UserError::from)?;
    Ok(HttpResponse::Ok().json(rows))
}
