//! The caller's own keys (`/v1/me/keys`, the web app's Keys page): list,
//! create with a label, revoke; open while `keys.self_service` is on, up to
//! `keys.max_per_user`, and never wider than the user's own models. The
//! same operations as `key …` and `/admin/users/{name}/keys`.

use crate::error::{error_body, ApiError};
use crate::sessions::{self, Me};
use crate::state::Gateway;
use crate::users::keys::{self as user_keys, Asker, NewKey};
use crate::users::UserError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/me/keys", web::get().to(list))
        .route("/me/keys", web::post().to(create))
        .route("/me/keys/{label}", web::delete().to(revoke));
}

/// The caller (by key or session), when self-service is on.
async fn owner(req: &HttpRequest, gw: &Gateway) -> Result<Me, ApiError> {
    let me = sessions::me(req, gw).await?;
    if !gw.live().config.keys.self_service {
        return Err(ApiError::SelfServiceDisabled);
    }
    Ok(me)
}

/// A refused change in the API's error shape.
fn refused(e: UserError) -> HttpResponse {
    match crate::admin::refusal(&e) {
        Some((status, code)) => error_body(status, &e.to_string(), "invalid_request_error", code),
        None => {
            tracing::warn!("cannot change the caller's keys: {e}");
            error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "The gateway's database is not reachable.",
                "api_error",
                "service_unavailable",
            )
        }
    }
}

async fn list(req: HttpRequest, gw: web::Data<Gateway>) -> Result<HttpResponse, ApiError> {
    let name = owner(&req, &gw).await?.user;
    let listed = crate::db::run(&gw.pool, move |c| user_keys::list(c, Some(&name))).await;
    Ok(match listed {
        Ok(list) => HttpResponse::Ok().json(list),
        Err(e) => refused(e),
    })
}

async fn create(
    req: HttpRequest,
    gw: web::Data<Gateway>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let me = owner(&req, &gw).await?;
    let body: serde_json::Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("The request body is not JSON: {e}")))?
    };
    let new = NewKey::from_json(body, false)
        .map_err(|e| ApiError::BadRequest(format!("The request body is not valid: {e}")))?;
    let max_keys = gw.live().config.keys.max_per_user;
    let added = crate::db::run(&gw.pool, move |c| {
        let asker = Asker::User {
            max_keys,
            via: me.via,
        };
        user_keys::add(c, &me.by, &me.user, new, asker)
    })
    .await;
    Ok(match added {
        Ok((label, key)) => {
            HttpResponse::Created().json(json!({"label": label, "key": key.expose()}))
        }
        Err(e) => refused(e),
    })
}

async fn revoke(
    req: HttpRequest,
    gw: web::Data<Gateway>,
    label: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let me = owner(&req, &gw).await?;
    let label = label.into_inner();
    let gone = crate::db::run(&gw.pool, move |c| {
        user_keys::revoke(c, &me.by, &me.user, &label)
    })
    .await;
    Ok(match gone {
        Ok(_) => HttpResponse::NoContent().finish(),
        Err(e) => refused(e),
    })
}
