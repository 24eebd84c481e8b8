//! The caller's own account: `GET /v1/me`, and the legacy billing endpoints
//! that chat clients call to show a balance (`/dashboard/billing/*`, also
//! under `/v1/`). Answered here, never forwarded upstream.
//!
//! Those clients show dollars. For a user with a USD budget they are real
//! dollars: the budget, and what was spent this period. Otherwise the
//! limits are tokens, reported in thousands: 1.00 "USD" is 1,000 tokens, so
//! a 500,000-token limit reads as $500.00 in NextChat; a user without a
//! token limit shows a limit of 100,000,000 (what OpenAI-compatible
//! gateways send for "unlimited").

use crate::error::ApiError;
use crate::state::Gateway;
use crate::users::{self, UserError, UserView};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

/// Tokens per displayed dollar in the billing endpoints.
pub const TOKENS_PER_USD: f64 = 1000.0;
/// The limit shown for users without a token limit.
const UNLIMITED_USD: f64 = 100_000_000.0;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/dashboard/billing/subscription",
        web::get().to(subscription),
    )
    .route("/dashboard/billing/usage", web::get().to(usage))
    .route(
        "/dashboard/billing/credit_grants",
        web::get().to(credit_grants),
    );
}

/// The caller's user, read off the request path's key table first.
async fn caller_view(
    req: &HttpRequest,
    gw: &web::Data<Gateway>,
    range: Option<(NaiveDate, Option<NaiveDate>)>,
) -> Result<(UserView, Option<crate::usage::daily::Used>), ApiError> {
    let name = crate::sessions::me(req, gw).await?.user;
    let read = crate::db::run(&gw.pool, move |conn| {
        let view = users::show(conn, &name)?;
        let used = match range {
            Some((since, until)) => Some(crate::usage::daily::used_between(
                conn, &name, since, until,
            )?),
            None => None,
        };
        Ok::<_, UserError>((view, used))
    })
    .await;
    read.map_err(|e| match e {
        // Removed since the key table was last refreshed.
        UserError::NotFound(_) => ApiError::InvalidKey(crate::error::UNKNOWN_KEY),
        e => {
            tracing::warn!("cannot read the caller's account: {e}");
            ApiError::Unavailable("The account database is not reachable.".into())
        }
    })
}

pub async fn me(req: HttpRequest, gw: web::Data<Gateway>) -> Result<HttpResponse, ApiError> {
    let (mut view, _) = caller_view(&req, &gw, None).await?;
    // The admin's note describes the user to the admin, not to the user.
    view.note = None;
    Ok(HttpResponse::Ok().json(view))
}

fn usd(tokens: i64) -> f64 {
    tokens as f64 / TOKENS_PER_USD
}

/// (limit, used) in the dollars the billing endpoints show: a budget and
/// what was spent, else tokens in thousands. `in_range`: what was used in
/// the dates asked, instead of this period.
fn balance(view: &UserView, in_range: Option<crate::usage::daily::Used>) -> (f64, f64) {
    match view.budget_usd {
        Some(budget) => (
            budget,
            in_range.map_or(view.spent_usd, |u| crate::usage::prices::usd(u.nano_usd)),
        ),
        None => (
            view.token_limit.map_or(UNLIMITED_USD, usd),
            usd(in_range.map_or(view.tokens_used, |u| u.tokens)),
        ),
    }
}

async fn subscription(req: HttpRequest, gw: web::Data<Gateway>) -> Result<HttpResponse, ApiError> {
    let (view, _) = caller_view(&req, &gw, None).await?;
    let (limit, _) = balance(&view, None);
    let access_until = view
        .expires_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(0, |t| t.timestamp());
    Ok(HttpResponse::Ok().json(json!({
        "object": "billing_subscription",
        "has_payment_method": true,
        "soft_limit_usd": limit,
        "hard_limit_usd": limit,
        "system_hard_limit_usd": limit,
        "access_until": access_until,
        "plan": {"title": "chatgate", "id": "chatgate"},
    })))
}

#[derive(Deserialize)]
struct UsageQuery {
    start_date: Option<String>,
    end_date: Option<String>,
}

fn date(s: &Option<String>, name: &str) -> Result<Option<NaiveDate>, ApiError> {
    s.as_deref()
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                ApiError::BadRequest(format!("`{name}` must be a date like 2026-11-01."))
            })
        })
        .transpose()
}

/// `total_usage` in cents, over `start_date`..`end_date` (exclusive) when
/// given, else this limit period.
async fn usage(
    req: HttpRequest,
    gw: web::Data<Gateway>,
    q: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let start = date(&q.start_date, "start_date")?;
    let end = date(&q.end_date, "end_date")?;
    let range = start.map(|s| (s, end));
    let (view, in_range) = caller_view(&req, &gw, range).await?;
    let (_, used) = balance(&view, in_range);
    Ok(HttpResponse::Ok().json(json!({
        "object": "list",
        "total_usage": used * 100.0,
    })))
}

async fn credit_grants(req: HttpRequest, gw: web::Data<Gateway>) -> Result<HttpResponse, ApiError> {
    let (view, _) = caller_view(&req, &gw, None).await?;
    let (granted, used) = balance(&view, None);
    Ok(HttpResponse::Ok().json(json!({
        "object": "credit_summary",
        "total_granted": granted,
        "total_used": used,
        "total_available": (granted - used).max(0.0),
        "grants": {"object": "list", "data": []},
    })))
}

/// `GET /v1/me/usage?period=…&by=day,model`: the caller's own usage, with
/// `usage report`'s fields and range syntax (by day unless `by` says).
pub async fn my_usage(req: HttpRequest, gw: web::Data<Gateway>) -> Result<HttpResponse, ApiError> {
    use crate::usage::report;
    let me = crate::sessions::me(&req, &gw).await?;
    // A key passed as `?token=` is not a report parameter.
    let query = crate::upstream::failover::strip_credentials(req.query_string());
    let mut params = web::Query::<report::Params>::from_query(&query)
        .map_err(|e| ApiError::BadRequest(format!("The query is not valid: {e}")))?
        .into_inner();
    if params.user.is_some() {
        return Err(ApiError::BadRequest(
            "`user` is not a parameter of /v1/me/usage: it is always your own usage.".into(),
        ));
    }
    params.by.get_or_insert_with(|| "day".into());
    let mut query = params
        .into_query(crate::db::now())
        .map_err(ApiError::BadRequest)?;
    // Whole days are read from the daily totals: a bound within a day (or a
    // grouping only records have) would read every user's records.
    if query.by.iter().any(|g| g.per_record()) {
        return Err(ApiError::BadRequest(
            "/v1/me/usage groups by user, team, model, day, month and upstream; `usage report` groups by endpoint, client and key too.".into(),
        ));
    }
    if !query.range.whole_days() {
        return Err(ApiError::BadRequest(
            "/v1/me/usage reports whole days: give `since` and `until` as dates (YYYY-MM-DD) or at midnight UTC, or a `period`.".into(),
        ));
    }
    query.users = vec![me.user];
    let by = query.by.clone();
    let rows = crate::db::query(&gw.pool, move |c| report::run(c, &query)).await?;
    Ok(HttpResponse::Ok().json(report::to_json(&rows, &by)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostQuery {
    model: String,
    #[serde(default)]
    prompt_tokens: i64,
    #[serde(default)]
    completion_tokens: i64,
    #[serde(default)]
    cached_tokens: i64,
}

/// `GET /v1/me/cost?model=…&prompt_tokens=…&completion_tokens=…`: what
/// those tokens of `model` cost at the gateway's prices, as a usage record
/// of them would (`cost_usd`: null for a model without a price). The web
/// app shows it under each reply.
pub async fn my_cost(
    req: HttpRequest,
    gw: web::Data<Gateway>,
    q: web::Query<CostQuery>,
) -> Result<HttpResponse, ApiError> {
    crate::sessions::me(&req, &gw).await?;
    let q = q.into_inner();
    let live = gw.live();
    let cost = live.prices.rate(&q.model).map(|rate| {
        let tokens = crate::usage::Tokens {
            prompt: q.prompt_tokens,
            completion: q.completion_tokens,
            cached: q.cached_tokens,
            cache_written: 0,
        };
        crate::usage::prices::usd(rate.cost(tokens, &crate::usage::Extras::default()))
    });
    Ok(HttpResponse::Ok().json(json!({"model": q.model, "cost_usd": cost})))
}
