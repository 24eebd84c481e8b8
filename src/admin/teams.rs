//! `/admin/teams…` and `/admin/users/{name}/keys…`: the same operations as
//! `team …` and `key …` on the command line.

use super::{bad, invalid_body, Admin, AdminError, RechargeBody};
use crate::db;
use crate::state::Gateway;
use crate::teams;
use crate::users::keys::{self as user_keys, Asker, NewKey};
use crate::users::UserSettings;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/teams", web::get().to(list))
        .route("/teams", web::post().to(create))
        .route("/teams/{name}", web::get().to(show))
        .route("/teams/{name}", web::patch().to(edit))
        .route("/teams/{name}", web::delete().to(remove))
        .route("/teams/{name}/recharge", web::post().to(recharge))
        .route("/users/{name}/keys", web::get().to(keys))
        .route("/users/{name}/keys", web::post().to(add_key))
        .route("/users/{name}/keys/{label}", web::delete().to(revoke_key));
}

async fn list(_admin: Admin, gw: web::Data<Gateway>) -> Result<HttpResponse, AdminError> {
    Ok(HttpResponse::Ok().json(db::run(&gw.pool, teams::list).await?))
}

async fn create(
    Admin(by): Admin,
    gw: web::Data<Gateway>,
    body: web::Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, AdminError> {
    let mut body = body.into_inner();
    let name = match body.remove("name") {
        Some(serde_json::Value::String(s)) => s,
        _ => return Err(bad("`name` is required, a string")),
    };
    let settings =
        UserSettings::from_json(serde_json::Value::Object(body)).map_err(invalid_body)?;
    let team = db::run(&gw.pool, move |c| teams::add(c, &by, &name, settings)).await?;
    Ok(HttpResponse::Created().json(team))
}

async fn show(
    _admin: Admin,
    gw: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    Ok(HttpResponse::Ok().json(db::run(&gw.pool, move |c| teams::show(c, &name)).await?))
}

async fn edit(
    Admin(by): Admin,
    gw: web::Data<Gateway>,
    name: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let settings = UserSettings::from_json(body.into_inner()).map_err(invalid_body)?;
    let team = db::run(&gw.pool, move |c| teams::update(c, &by, &name, settings)).await?;
    Ok(HttpResponse::Ok().json(team))
}

async fn remove(
    Admin(by): Admin,
    gw: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    db::run(&gw.pool, move |c| teams::remove(c, &by, &name)).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn recharge(
    Admin(by): Admin,
    gw: web::Data<Gateway>,
    name: web::Path<String>,
    body: web::Json<RechargeBody>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let top_up = body.into_inner().top_up()?;
    let team = db::run(&gw.pool, move |c| teams::recharge(c, &by, &name, top_up)).await?;
    Ok(HttpResponse::Ok().json(team))
}

async fn keys(
    _admin: Admin,
    gw: web::Data<Gateway>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let list = db::run(&gw.pool, move |c| user_keys::list(c, Some(&name))).await?;
    Ok(HttpResponse::Ok().json(list))
}

async fn add_key(
    Admin(by): Admin,
    gw: web::Data<Gateway>,
    name: web::Path<String>,
    body: Option<web::Json<serde_json::Value>>,
) -> Result<HttpResponse, AdminError> {
    let name = name.into_inner();
    let body = body.map_or_else(|| json!({}), |b| b.into_inner());
    let new = NewKey::from_json(body, true).map_err(invalid_body)?;
    let user = name.clone();
    let (label, key) = db::run(&gw.pool, move |c| {
        user_keys::add(c, &by, &name, new, Asker::Admin)
    })
    .await?;
    Ok(HttpResponse::Created().json(json!({"user": user, "label": label, "key": key.expose()})))
}

async fn revoke_key(
    Admin(by): Admin,
    gw: web::Data<Gateway>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (name, label) = path.into_inner();
    db::run(&gw.pool, move |c| user_keys::revoke(c, &by, &name, &label)).await?;
    Ok(HttpResponse::NoContent().finish())
}
