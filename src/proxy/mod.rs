//! The hot path: authenticate → the door (one parse of what the request
//! is) → read what routing needs → check the rules → route → forward (or
//! answer locally) → stream back, metered.

pub mod auth;
pub mod body;
pub mod door;
pub mod edge;
pub mod models;
pub mod owned;
pub mod probe;
pub mod reply;

use crate::error::ApiError;
use crate::limits::{self, Want};
use crate::objects::ObjectKind;
use crate::state::Gateway;
use crate::upstream::client::Clients;
use crate::upstream::failover::{self, Answer};
use crate::upstream::{echo, Target};
use crate::usage::meter::Accounting;
use crate::usage::meter::Pending;
use crate::usage::UsageRecord;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use body::{with_include_usage, Incoming, Media, RequestBody};
use bytes::Bytes;
use door::{Endpoint, Metered as Kind, Refused};
use probe::Probe;
use reply::{read_reply, read_whole, with_id, Reply};
use std::time::Instant;

pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    gw: web::Data<Gateway>,
    clients: web::Data<Clients>,
) -> HttpResponse {
    let started = Instant::now();
    let id = edge::request_id();
    let path = req.path();
    let endpoint = path.strip_prefix("/v1").unwrap_or(path);
    // Anthropic's clients read Anthropic's error shape.
    let anthropic = endpoint.starts_with("/messages");
    let refuse = |e: &ApiError| {
        if anthropic {
            e.anthropic_response()
        } else {
            e.error_response()
        }
    };
    let caller = match auth::authenticate(&gw.keys, req.headers(), req.query_string()) {
        Ok(c) => c,
        Err(e) => {
            gw.usage.unattributed(e.status_code().as_u16());
            return with_id(refuse(&e), id);
        }
    };
    let mut pending = Pending::new(
        UsageRecord {
            at: crate::usage::records::now(),
            request_id: id.to_str().ok().map(Box::from),
            user: caller.name.clone(),
            method: method_name(req.method()),
            endpoint: endpoint.to_owned(),
            model: None,
            model_known: false,
            upstream: None,
            status: 0,
            prompt_tokens: None,
            completion_tokens: None,
            total_tokens: None,
            cached_tokens: None,
            cache_written_tokens: None,
            cost_nano_usd: None,
            estimated: false,
            stream: false,
            latency_ms: 0,
            work: None,
            reservation: None,
        },
        started,
        gw.usage.clone(),
    );
    let request = Request {
        req: &req,
        gw: &gw,
        clients: &clients,
        caller: &caller,
        endpoint,
        started,
    };
    match request.serve(payload, &mut pending).await {
        Ok(reply) => with_id(reply.into_response(pending, &gw), id),
        Err(e) => {
            pending.record.status = e.status_code().as_u16();
            pending.finish();
            with_id(refuse(&e), id)
        }
    }
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The refusal of the door, as the API's error.
fn refusal(r: Refused, endpoint: &str, method: &Method) -> ApiError {
    match r {
        Refused::BadPath(why) => ApiError::UnknownEndpoint(why),
        Refused::NotAllowed(name) => ApiError::EndpointNotAllowed(format!(
            "The gateway does not forward /v1/{name}: its use cannot be metered. \
             The gateway's admin can open it with `endpoints.allow: [\"/{name}\"]`."
        )),
        Refused::Unknown => ApiError::UnknownEndpoint(format!(
            "{method} /v1{} is not an endpoint of the API.",
            endpoint.chars().take(200).collect::<String>()
        )),
    }
}

/// One request on its way through the gateway.
struct Request<'a> {
    req: &'a HttpRequest,
    gw: &'a Gateway,
    clients: &'a Clients,
    caller: &'a crate::keytable::Caller,
    /// The path after `/v1`.
    endpoint: &'a str,
    started: Instant,
}

impl Request<'_> {
    async fn serve(&self, payload: web::Payload, pending: &mut Pending) -> Result<Reply, ApiError> {
        let live = self.gw.live();
        let method = self.req.method();
        let endpoint = door::enter(method, self.req.path(), &live.config.endpoints.allow)
            .map_err(|r| refusal(r, self.endpoint, method))?;
        let caller = self.caller;
        if let Some(limit) = caller.limits.parallel {
            pending.running = Some(
                caller
                    .ledger
                    .start(limit)
                    .ok_or(ApiError::Parallel(limit))?,
            );
        }
        let limits = &live.config.limits;
        let deadline = tokio::time::Instant::from_std(self.started + limits.client_body_timeout);
        let incoming = Incoming::new(payload, limits.max_body_bytes, deadline);
        match endpoint {
            Endpoint::Metered(kind) => self.metered(kind, incoming, pending, &live).await,
            Endpoint::ModelList | Endpoint::Model => {
                self.admit(pending, Want::default())?;
                let (status, list, asked) = if endpoint == Endpoint::ModelList {
                    let (list, asked) =
                        models::list(&live.upstreams, self.clients, self.req, caller, self.gw)
                            .await?;
                    (StatusCode::OK, list, asked)
                } else {
                    let id = &self.endpoint["/models/".len()..];
                    models::one(&live.upstreams, self.clients, self.req, caller, self.gw, id)
                        .await?
                };
                pending.record.upstream = asked;
                let list = if self.req.headers().contains_key("anthropic-version") {
                    models::anthropic_shape(list)
                } else {
                    list
                };
                Ok(Reply::Local(echo::LocalReply {
                    status,
                    body: echo::Body::Full(Bytes::from(list.to_string())),
                    tokens: None,
                }))
            }
            Endpoint::Object(kind) => self.object(kind, incoming, pending, &live).await,
            Endpoint::Extra => {
                if caller.limits.tokens.is_some() || caller.limits.budget.is_some() {
                    return Err(ApiError::EndpointNotAllowed(format!(
                        "/v1{} cannot be metered, so it is not open to users with a token limit or a USD budget.",
                        self.endpoint
                    )));
                }
                let mut body = body::pass_through(self.req, incoming).await?;
                self.admit(pending, Want::default())?;
                let candidates = live.upstreams.candidates(None);
                self.send(
                    &live,
                    &candidates,
                    None,
                    &mut body,
                    Accounting::default(),
                    pending,
                )
                .await
            }
        }
    }

    /// A model-aware endpoint: read the model, check it, reserve, route.
    async fn metered(
        &self,
        kind: Kind,
        incoming: Incoming,
        pending: &mut Pending,
        live: &crate::state::Live,
    ) -> Result<Reply, ApiError> {
        let media = body::media(self.req);
        if let Media::Other(given) = &media {
            return Err(ApiError::UnsupportedMedia(format!(
                "/v1{} takes a JSON body (Content-Type: application/json){}; this request's body is {}.",
                self.endpoint,
                if matches!(kind, Kind::Audio | Kind::Images) { " or a multipart form" } else { "" },
                given.as_deref().map_or("of no media type".into(), |m| format!("`{m}`"))
            )));
        }
        let bytes = body::read_whole(self.req, incoming).await?;
        let mut accounting = Accounting {
            counted: kind.counted(),
            estimable: kind.estimable(),
            strip_usage: false,
        };
        let probe = match media {
            Media::Json => Probe::read(&bytes)?,
            _ => Probe {
                model: body::form_model(self.req, &bytes).await?,
                replies: 1,
                ..Probe::default()
            },
        };
        let record = &mut pending.record;
        record.stream = probe.stream;
        let model = probe.model.clone().ok_or_else(|| {
            ApiError::BadRequest(format!(
                "The request names no `model`; /v1{} needs one (the gateway routes by it).",
                self.endpoint
            ))
        })?;
        record.model = Some(model.clone());
        if !self.caller.may_use(&model) {
            return Err(ApiError::ModelNotAllowed(model));
        }
        // A stored response or conversation the request builds on must be
        // the caller's own.
        for id in &probe.refers_to {
            owned::own(&self.gw.pool, &self.caller.name, id).await?;
        }
        let candidates = live.upstreams.candidates(Some(&model));
        if candidates.is_empty() {
            return Err(ApiError::ModelNotFound(format!(
                "The model `{model}` does not exist or no upstream serves it."
            )));
        }
        let want = if accounting.counted {
            let guess = limits::prompt_guess(bytes.len());
            let default_reply = live.config.limits.reserve_completion_tokens;
            let reply = probe.reply_tokens(default_reply);
            let nano_usd = match self.caller.limits.budget {
                // At most what the prompt guess and full replies cost.
                Some(_) => live
                    .prices
                    .rate(&model)
                    .ok_or_else(|| ApiError::ModelUnpriced(model.clone()))?
                    .cost(crate::usage::Tokens {
                        prompt: guess,
                        completion: reply,
                        ..Default::default()
                    }),
                None => 0,
            };
            Want {
                tokens: probe.reservation(guess, default_reply),
                nano_usd,
            }
        } else {
            Want::default()
        };
        self.admit(pending, want)?;
        if let Target::Echo(e) = &candidates[0].target {
            pending.record.upstream = Some(candidates[0].name.clone());
            return Ok(Reply::Local(e.respond(
                self.req.method(),
                self.endpoint,
                Some(&bytes),
            )));
        }
        if accounting.estimable && media == Media::Json {
            pending.request = Some(bytes.clone());
        }
        let mut body = RequestBody::Buffered(bytes);
        // Without accounting nothing would hide an added usage chunk.
        let wants_usage = probe.stream && kind == Kind::ChatCompletions && pending.counts();
        if let (true, false, RequestBody::Buffered(bytes)) =
            (wants_usage, probe.include_usage, &body)
        {
            if let Some(changed) = with_include_usage(bytes) {
                body = RequestBody::Buffered(changed);
                accounting.strip_usage = true;
            }
        }
        // The upstream account keeps the reply: its creator is recorded.
        let kind = match kind {
            Kind::Responses if probe.store != Some(false) => Some(ObjectKind::Responses),
            Kind::ChatCompletions if probe.store == Some(true) => Some(ObjectKind::ChatCompletions),
            _ => None,
        };
        let reply = self
            .send(
                live,
                &candidates,
                Some(&model),
                &mut body,
                accounting,
                pending,
            )
            .await?;
        Ok(match (reply, kind) {
            (Reply::Upstream(answer, accounting, None), Some(kind)) => {
                let claim = owned::Claim {
                    pool: self.gw.pool.clone(),
                    kind,
                    user: self.caller.name.to_string(),
                    upstream: pending
                        .record
                        .upstream
                        .as_deref()
                        .unwrap_or_default()
                        .to_owned(),
                };
                Reply::Upstream(answer, accounting, Some(claim))
            }
            (reply, _) => reply,
        })
    }

    /// An account object: forwarded for its owner only, to the upstream
    /// that holds it; lists cut down to the caller's own; the creator of a
    /// new one recorded before the reply goes out.
    async fn object(
        &self,
        kind: ObjectKind,
        incoming: Incoming,
        pending: &mut Pending,
        live: &crate::state::Live,
    ) -> Result<Reply, ApiError> {
        let pool = &self.gw.pool;
        let user = &*self.caller.name;
        let method = self.req.method().clone();
        let named = door::object_id(kind, self.endpoint);
        let holder = match named {
            Some((id, _)) => {
                let owner = owned::own(pool, user, id).await?;
                let upstream = live.upstreams.named(&owner.upstream).ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "The upstream `{}` that holds `{id}` is not configured any more.",
                        owner.upstream
                    ))
                })?;
                vec![upstream]
            }
            None if matches!(method, Method::GET | Method::POST) => live.upstreams.candidates(None),
            None => {
                return Err(refusal(Refused::Unknown, self.endpoint, &method));
            }
        };
        let mut body = body::pass_through(self.req, incoming).await?;
        self.admit(pending, Want::default())?;
        let reply = self
            .send(
                live,
                &holder,
                None,
                &mut body,
                Accounting::default(),
                pending,
            )
            .await?;
        let Reply::Upstream(answer, accounting, _) = reply else {
            return Ok(reply); // the echo upstream keeps no objects
        };
        let upstream = pending
            .record
            .upstream
            .as_deref()
            .unwrap_or_default()
            .to_owned();
        let (status, headers, text) = match answer {
            Answer::Live(res) if res.status().is_success() => read_whole(res).await?,
            answer => return Ok(Reply::Upstream(answer, accounting, None)),
        };
        let created = match named {
            // A list: the caller's own entries only.
            None if method == Method::GET => {
                let own = owned::owned(pool, user, kind).await?;
                let only = owned::only_own(&text, &own).ok_or_else(|| {
                    ApiError::Upstream(format!(
                        "The upstream `{upstream}` sent a list that is not one."
                    ))
                })?;
                return Ok(read_reply(status, headers, only));
            }
            None => owned::first_id(&text).map(|id| (id.to_owned(), kind)),
            // An upload completed into a file: the file is the uploader's.
            Some((_, "complete")) if kind == ObjectKind::Uploads => {
                owned::completed_file(&text).map(|id| (id, ObjectKind::Files))
            }
            Some((id, "")) if method == Method::DELETE => {
                owned::forget(pool, id.to_owned()).await?;
                None
            }
            Some(_) => None,
        };
        if let Some((id, kind)) = created {
            owned::claim(pool, id, kind, user.to_owned(), upstream).await?;
        }
        Ok(read_reply(status, headers, text))
    }

    /// Takes what the request needs of the caller's limits.
    fn admit(&self, pending: &mut Pending, want: Want) -> Result<(), ApiError> {
        let limits = &self.caller.limits;
        if limits.rpm.is_some() || limits.counts_usage() {
            let record = &mut pending.record;
            record.reservation = self
                .caller
                .ledger
                .admit(limits, want, record.at, Instant::now())
                .map_err(ApiError::from)?;
        }
        Ok(())
    }

    /// Forwards to `candidates`, in order.
    async fn send(
        &self,
        live: &crate::state::Live,
        candidates: &[&crate::upstream::Upstream],
        model: Option<&str>,
        body: &mut RequestBody,
        accounting: Accounting,
        pending: &mut Pending,
    ) -> Result<Reply, ApiError> {
        if let Some(Target::Echo(e)) = candidates.first().map(|u| &u.target) {
            pending.record.upstream = Some(candidates[0].name.clone());
            return Ok(Reply::Local(e.respond(
                self.req.method(),
                self.endpoint,
                None,
            )));
        }
        let scrub = |text: &[u8]| live.upstreams.scrub(text);
        match failover::with_failover(
            self.clients,
            candidates,
            &scrub,
            self.req,
            self.endpoint,
            model,
            body,
        )
        .await
        {
            Ok((answer, upstream)) => {
                pending.record.upstream = Some(upstream.name.clone());
                Ok(Reply::Upstream(answer, accounting, None))
            }
            Err((e, tried)) => {
                pending.record.upstream = tried;
                Err(e)
            }
        }
    }
}
