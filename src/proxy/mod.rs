//! The hot path: authenticate → the door (the catalogue's entry for the
//! request) → read the body and every object it names → the rules →
//! route → forward (or answer locally) → stream back, metered.

pub mod auth;
pub mod body;
pub mod door;
pub mod edge;
pub mod gemini;
pub mod gemini_lists;
pub mod gemini_upload;
pub mod lists;
pub mod models;
pub mod owned;
pub mod pace;
pub mod probe;
pub mod reply;
pub mod rules;

use crate::catalogue::{self, Api, Entry, Face, Meter, Objects, Serve};
use crate::error::ApiError;
use crate::leases::Outcome;
use crate::limits::{Busy, Refusal, Shortfall, Want};
use crate::objects::ObjectKind;
use crate::state::{Gateway, Live};
use crate::upstream::client::Clients;
use crate::upstream::failover::{self, Answer, Outgoing};
use crate::upstream::{echo, Target, Upstream};
use crate::usage::meter::{log_refused, Accounting, Pending};
use crate::usage::UsageRecord;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use body::{with_include_usage, Incoming, Media, RequestBody};
use bytes::Bytes;
use door::{Endpoint, Refused};
use lists::{Asked, Gathered, Page};
use probe::Ref;
use reply::{read_reply, read_whole, with_id, Reply};
use std::time::Instant;

/// The refusal while `usage.buffer_records` records wait for the database.
const USAGE_FULL: &str = "The gateway cannot record usage right now (its database is unreachable and its buffer is full); try again shortly.";

pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    gw: web::Data<Gateway>,
    clients: web::Data<Clients>,
) -> HttpResponse {
    let started = Instant::now();
    let id = edge::request_id();
    let path = req.path();
    let (api, endpoint) = Api::split(path).unwrap_or((Api::V1, path));
    // Each API's clients read their own error shape.
    let face = face_of(&req, api, endpoint);
    let refuse = |e: &ApiError| e.response_for(face);
    let caller = match auth::authenticate_request(&gw, &req).and_then(|c| {
        // Fail closed: a request whose usage could not be recorded is not served.
        if gw.usage.has_room() {
            Ok(c)
        } else {
            Err(ApiError::Unavailable(USAGE_FULL.into()))
        }
    }) {
        Ok(c) => c,
        Err(e) => {
            let status = e.status_code().as_u16();
            gw.usage.unattributed(status);
            let shown = id.to_str().unwrap_or("-");
            log_refused(shown, method_name(req.method()), endpoint, status, started);
            return with_id(refuse(&e), id);
        }
    };
    let mut pending = Pending::new(
        UsageRecord {
            at: crate::usage::records::now(),
            request_id: id.to_str().ok().map(Box::from),
            user: caller.user.name.clone(),
            key: caller.key.clone(),
            team: caller.user.team.as_ref().map(|t| t.name.clone()),
            client: crate::usage::client::family(
                req.headers()
                    .get(actix_web::http::header::USER_AGENT)
                    .map(|v| v.as_bytes()),
            ),
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
            extras: None,
            later: None,
            sized: Vec::new(),
        },
        started,
        gw.usage.clone(),
    );
    let request = Request {
        req: &req,
        gw: &gw,
        clients: &clients,
        caller: &caller,
        api,
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

pub fn method_name(m: &Method) -> &'static str {
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

/// Whose shape a refusal takes, before the door has looked: Google's on
/// Gemini's paths (and for a model list asked with a key given Google's
/// way), Anthropic's on `/messages`, OpenAI's otherwise.
fn face_of(req: &HttpRequest, api: Api, endpoint: &str) -> Face {
    let model_list = endpoint == "/models" || endpoint.starts_with("/models/");
    if api == Api::V1beta
        || catalogue::is_gemini_call(endpoint)
        || api == Api::Upload
        || endpoint.starts_with("/cachedContents")
        || (model_list && auth::google_style(req.headers(), req.query_string()))
    {
        Face::Gemini
    } else if endpoint.starts_with("/messages") {
        Face::Anthropic
    } else {
        Face::OpenAi
    }
}

/// A list request, read.
enum Listing {
    OpenAi(ObjectKind, Asked),
    Gemini(ObjectKind, gemini_lists::Asked),
}

/// The refusal of the door, as the API's error.
fn refusal(r: Refused, api: Api, endpoint: &str, method: &Method) -> ApiError {
    let prefix = api.prefix();
    match r {
        Refused::BadPath(why) => ApiError::UnknownEndpoint(why),
        Refused::NotAllowed(name) => ApiError::EndpointNotAllowed(format!(
            "The gateway does not forward /v1/{name}: its use cannot be metered. \
             The gateway's admin can open it with `endpoints.allow: [\"/{name}\"]`."
        )),
        Refused::Unknown if endpoint.starts_with("/v1/") || endpoint.starts_with("/v1beta/") => {
            ApiError::UnknownEndpoint(format!(
                "The path has its version twice ({prefix}{}): the client's base URL probably ends in `{prefix}` and the client adds it itself (Claude Code with ANTHROPIC_BASE_URL=…/v1, Gemini CLI with GOOGLE_GEMINI_BASE_URL=…/v1beta); remove it from the base URL.",
                endpoint.chars().take(100).collect::<String>()
            ))
        }
        Refused::Unknown => {
            let shown: String = endpoint.chars().take(200).collect();
            let takes = crate::catalogue::methods_for(endpoint.trim_start_matches('/'));
            ApiError::UnknownEndpoint(if takes.is_empty() {
                format!("{method} {prefix}{shown} is not an endpoint of the API.")
            } else {
                format!("{prefix}{shown} takes {}, not {method}.", takes.join(" or "))
            })
        }
    }
}

/// One request on its way through the gateway.
struct Request<'a> {
    req: &'a HttpRequest,
    gw: &'a Gateway,
    clients: &'a Clients,
    caller: &'a crate::keytable::Caller,
    /// The version the path begins with (`/v1`, or Gemini's `/v1beta`).
    api: Api,
    /// The path after it.
    endpoint: &'a str,
    started: Instant,
}

impl Request<'_> {
    async fn serve(&self, payload: web::Payload, pending: &mut Pending) -> Result<Reply, ApiError> {
        let live = self.gw.live();
        let grace = live.config.database.outage_grace;
        if self.gw.outage.beyond(grace) && self.caller.any_limit() {
            return Err(ApiError::Unavailable(format!(
                "The gateway's database has not answered for over {}; requests that count against a limit are refused until it is back.",
                humantime::format_duration(grace)
            )));
        }
        let method = self.req.method();
        let allowed = &live.config.endpoints.allow;
        let endpoint = match door::enter(method, self.req.path(), allowed) {
            Ok(e) => e,
            Err(refused) => {
                // Recorded under a name of a bounded set; the log line
                // shows the path's beginning.
                let record = &mut pending.record;
                pending.log_path = Some(self.endpoint.chars().take(100).collect());
                record.endpoint = match &refused {
                    Refused::NotAllowed(name) => format!("/{name}"),
                    _ => UNKNOWN.to_owned(),
                };
                return Err(refusal(refused, self.api, self.endpoint, method));
            }
        };
        // Records name an endpoint as the catalogue does, without the ids
        // in its path (a name is kept for good; ids are many).
        match endpoint {
            Endpoint::Known(entry) if entry.path.len() != entry.literal_len() => {
                pending.record.endpoint = entry.record_name();
            }
            Endpoint::Extra(i) => pending.record.endpoint = allowed[i].clone(),
            Endpoint::Known(_) => {}
        }
        self.start(pending).await?;
        let limits = &live.config.limits;
        let deadline = tokio::time::Instant::from_std(self.started + limits.client_body_timeout);
        let incoming = Incoming::new(payload, limits.max_body_bytes, deadline);
        let entry = match endpoint {
            Endpoint::Extra(_) => return self.extra(incoming, pending, &live).await,
            Endpoint::Known(entry) => entry,
        };
        match entry.serve {
            Serve::Model => self.model(entry, incoming, pending, &live).await,
            Serve::Object => self.object(entry, incoming, pending, &live).await,
            Serve::ModelList | Serve::ModelInfo => self.models(entry, pending, &live).await,
        }
    }

    /// `GET /v1/models[/{id}]`, answered from the upstreams' lists.
    async fn models(
        &self,
        entry: &Entry,
        pending: &mut Pending,
        live: &Live,
    ) -> Result<Reply, ApiError> {
        self.admit(pending, Want::default()).await?;
        let (upstreams, caller) = (&live.upstreams, self.caller);
        let (status, list, asked) = if entry.serve == Serve::ModelList {
            let (list, asked) =
                models::list(upstreams, self.clients, self.req, caller, self.gw).await?;
            (StatusCode::OK, list, asked)
        } else {
            let id = &self.endpoint["/models/".len()..];
            models::one(upstreams, self.clients, self.req, caller, self.gw, id).await?
        };
        pending.record.upstream = asked;
        let google = entry.face == Face::Gemini
            || auth::google_style(self.req.headers(), self.req.query_string());
        let list = if google {
            models::google_shape(list, upstreams)?
        } else if self.req.headers().contains_key("anthropic-version") {
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

    /// A path the operator opened: forwarded as it is, counted as a
    /// request only, so refused to users whose use is metered; the objects
    /// its body and query name must be the caller's own all the same.
    async fn extra(
        &self,
        incoming: Incoming,
        pending: &mut Pending,
        live: &Live,
    ) -> Result<Reply, ApiError> {
        if self.caller.metered() {
            return Err(ApiError::EndpointNotAllowed(format!(
                "/v1{} cannot be metered, so it is not open to users with a token limit or a USD budget (or in a team with one).",
                self.endpoint
            )));
        }
        let (mut body, probe) = body::read_extra(self.req, self.endpoint, incoming).await?;
        let mut refs = probe.refs;
        refs.extend(query_refs(self.req.query_string()));
        owned::check(&self.gw.pool, &self.caller.user.name, refs).await?;
        self.admit(pending, Want::default()).await?;
        let candidates = live.upstreams.candidates(None);
        let out = Outgoing::new(self.req, self.endpoint, None);
        self.send(
            live,
            &candidates,
            &out,
            &mut body,
            Accounting::default(),
            pending,
        )
        .await
    }

    /// A model-aware endpoint: read the model and every object the body
    /// names, check the rules, reserve, route.
    async fn model(
        &self,
        entry: &'static Entry,
        incoming: Incoming,
        pending: &mut Pending,
        live: &Live,
    ) -> Result<Reply, ApiError> {
        let body::Probed {
            bytes,
            media,
            probe,
        } = body::read_probed(self.req, entry.body, incoming).await?;
        let mut probe = probe;
        if entry.face == Face::Gemini {
            gemini::read_path(
                entry,
                self.endpoint,
                self.req.query_string(),
                &bytes,
                &mut probe,
            )?;
        }
        let record = &mut pending.record;
        record.stream = probe.stream;
        let model = probe.model.clone().ok_or_else(|| {
            ApiError::BadRequest(format!(
                "The request names no `model`; /v1{} needs one (the gateway routes by it).",
                self.endpoint
            ))
        })?;
        check_model_name(&model)?;
        let mut candidates = live.upstreams.candidates(Some(&model));
        candidates.retain(|u| u.speaks(entry.face));
        // What clients invent is recorded under one name: neither the
        // database, the log nor reports grow with it.
        record.model = Some(if candidates.is_empty() {
            UNKNOWN.to_owned()
        } else {
            model.clone()
        });
        if !self.caller.may_use(&model) {
            return Err(ApiError::ModelNotAllowed(model));
        }
        // Every object the body names is the caller's own; what they bring
        // into the prompt is known.
        let named = owned::check(&self.gw.pool, &self.caller.user.name, probe.refs.clone()).await?;
        if candidates.is_empty() {
            return Err(ApiError::ModelNotFound(format!(
                "The model `{model}` does not exist or no upstream serves it."
            )));
        }
        // The upstream that holds what the request builds on answers it.
        if let Some(holder) = named.holder() {
            candidates.sort_by_key(|u| &*u.name != holder);
        }
        let (want, guess) = rules::want(
            entry,
            &probe,
            &named,
            bytes.len(),
            &model,
            self.caller,
            live,
        )?;
        self.admit(pending, want).await?;
        let limits = &self.caller.user.rules.limits;
        if limits.rpm.is_some() || limits.requests.is_some() || limits.tokens.is_some() {
            let now = pending.record.at;
            let left = self
                .caller
                .user
                .rules
                .ledger
                .left(limits, now, Instant::now());
            pending.pace = pace::headers(left, entry.face, now);
        }
        if let Target::Echo(e) = &candidates[0].target {
            pending.record.upstream = Some(candidates[0].name.clone());
            return Ok(Reply::Local(e.respond(
                self.req.method(),
                self.endpoint,
                Some(&bytes),
            )));
        }
        let mut accounting = rules::accounting(entry, &probe, guess);
        if media == Media::Json && (accounting.estimable() || entry.meter == Meter::Speech) {
            pending.request = Some(bytes.clone());
        }
        // A conversation the request adds to takes its size from it.
        pending.record.sized = named
            .objects
            .iter()
            .filter(|(r, _)| r.kind == ObjectKind::Conversations)
            .map(|(r, _)| Box::from(r.id.as_str()))
            .collect();
        let mut body = RequestBody::Buffered(bytes);
        // Without accounting nothing would hide an added usage chunk.
        let stream_usage = matches!(entry.meter, Meter::Tokens { stream_usage: true });
        if let (true, true, false, RequestBody::Buffered(bytes)) = (
            probe.stream && stream_usage,
            pending.counts(),
            probe.include_usage,
            &body,
        ) {
            if let Some(changed) = with_include_usage(bytes) {
                body = RequestBody::Buffered(changed);
                accounting.strip_usage = true;
            }
        }
        // The upstream account keeps the reply: its creator is recorded.
        let creates = match entry.objects {
            Objects::Creates(ObjectKind::Responses) if probe.store != Some(false) => {
                Some(ObjectKind::Responses)
            }
            Objects::Creates(ObjectKind::ChatCompletions) if probe.store == Some(true) => {
                Some(ObjectKind::ChatCompletions)
            }
            _ => None,
        };
        let out = Outgoing::new(self.req, self.endpoint, Some(&model));
        let reply = self
            .send(live, &candidates, &out, &mut body, accounting, pending)
            .await?;
        Ok(match (reply, creates) {
            (Reply::Upstream(answer, accounting, None), Some(kind)) => {
                let claim = owned::Claim {
                    pool: self.gw.pool.clone(),
                    kind,
                    user: self.caller.user.name.to_string(),
                    upstream: self.upstream_name(pending),
                    created: Default::default(),
                };
                Reply::Upstream(answer, accounting, Some(claim))
            }
            (reply, _) => reply,
        })
    }

    /// An account object: forwarded for its owner only, to the upstream
    /// that holds it, with every object its query and body name the
    /// caller's own too; lists cut down to the caller's own; the creator
    /// of a new one recorded before the reply goes out.
    async fn object(
        &self,
        entry: &'static Entry,
        incoming: Incoming,
        pending: &mut Pending,
        live: &Live,
    ) -> Result<Reply, ApiError> {
        let segments: Vec<&str> = self.endpoint[1..].split('/').collect();
        let mut refs: Vec<Ref> = entry
            .owned_ids(&segments)
            .into_iter()
            .map(|(kind, id)| Ref {
                kind,
                id: kind.id_from_path(id),
            })
            .collect();
        let named_in_path = refs.len();
        let deleted = match entry.objects {
            Objects::Deletes => refs.last().map(|r| r.id.clone()),
            _ => None,
        };
        let probed = body::read_probed(self.req, entry.body, incoming).await?;
        refs.extend(probed.probe.refs);
        let query = self.req.query_string();
        let listing = match entry.objects {
            Objects::Lists(kind) if entry.face == Face::Gemini => {
                let asked = gemini_lists::Asked::parse(query).map_err(ApiError::BadRequest)?;
                refs.extend(asked.after.iter().map(|id| Ref {
                    kind,
                    id: id.clone(),
                }));
                Some(Listing::Gemini(kind, asked))
            }
            Objects::Lists(kind) => {
                let asked = Asked::parse(kind, query).map_err(ApiError::BadRequest)?;
                refs.extend(asked.cursors(kind));
                Some(Listing::OpenAi(kind, asked))
            }
            _ => None,
        };
        let query_named = query_refs(query);
        // An upload's part goes where the upload the query names was begun.
        let is_part = entry.objects == Objects::UploadsGeminiFile && !query_named.is_empty();
        let names_holder = named_in_path > 0 || is_part;
        refs.extend(query_named);
        let named = owned::check(&self.gw.pool, &self.caller.user.name, refs).await?;
        let holder = match named.objects.first().filter(|_| names_holder) {
            Some((r, known)) => {
                let upstream = live.upstreams.named(&known.owner.upstream).ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "The upstream `{}` that holds `{}` is not configured any more.",
                        known.owner.upstream, r.id
                    ))
                })?;
                vec![upstream]
            }
            None => {
                let mut all = live.upstreams.candidates(None);
                all.retain(|u| u.speaks(entry.face));
                all
            }
        };
        self.admit(pending, Want::default()).await?;
        match listing {
            Some(Listing::OpenAi(kind, asked)) => {
                return self.list(kind, asked, &holder, pending, live).await
            }
            Some(Listing::Gemini(kind, asked)) => {
                return self.gemini_list(kind, asked, &holder, pending, live).await
            }
            None => {}
        }
        let mut body = match entry.body {
            catalogue_body if catalogue_body != crate::catalogue::Body::None => {
                RequestBody::Buffered(probed.bytes)
            }
            _ => RequestBody::None,
        };
        let out = Outgoing::new(self.req, self.endpoint, None);
        let reply = self
            .send(
                live,
                &holder,
                &out,
                &mut body,
                Accounting::default(),
                pending,
            )
            .await?;
        let Reply::Upstream(answer, accounting, _) = reply else {
            return Ok(reply); // the echo upstream keeps no objects
        };
        let looks = match entry.objects {
            Objects::Creates(_) | Objects::CompletesUpload | Objects::UploadsGeminiFile => true,
            // A stored response read: if it finished, its charge settles.
            Objects::None => segments.len() == 2 && segments[0] == "responses",
            _ => false,
        };
        let res = match answer {
            Answer::Live(res)
                if res.status().is_success() && (looks || entry.objects == Objects::Deletes) =>
            {
                res
            }
            answer => return Ok(Reply::Upstream(answer, accounting, None)),
        };
        let (status, mut headers, text) = read_whole(res).await?;
        let user = self.caller.user.name.to_string();
        let upstream = self.upstream_name(pending);
        let pool = &self.gw.pool;
        match entry.objects {
            Objects::Creates(kind) => {
                let v: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
                if let Some(id) = owned::created_id(kind, &v, &text) {
                    let tokens = owned::tokens_of(&v);
                    owned::claim(pool, id.to_owned(), kind, user, upstream, tokens).await?;
                }
            }
            Objects::CompletesUpload => {
                if let Some((id, tokens)) = owned::completed_file(&text) {
                    owned::claim(pool, id, ObjectKind::Files, user, upstream, tokens).await?;
                }
            }
            Objects::UploadsGeminiFile if !is_part => {
                // Begun: the upload is the starter's, and its parts come
                // here, not to the upstream.
                let origin = {
                    let here = self.req.connection_info();
                    format!("{}://{}", here.scheme(), here.host())
                };
                if let Some(id) = gemini_upload::begun(&mut headers, &origin) {
                    owned::claim(pool, id, ObjectKind::Uploads, user, upstream, None).await?;
                }
            }
            Objects::UploadsGeminiFile => {
                gemini_upload::no_address(&mut headers);
                if let Some(name) = gemini_upload::finished(&text) {
                    owned::claim(pool, name, ObjectKind::GeminiFiles, user, upstream, None).await?;
                }
            }
            Objects::Deletes => {
                owned::forget(pool, deleted.unwrap_or_default()).await?;
            }
            _ => {
                if let Some(settled) = crate::settle::outcome(segments[1], &text) {
                    self.gw.usage.settle(settled);
                }
            }
        }
        Ok(read_reply(status, headers, text))
    }

    /// A list of the caller's own objects of `kind`: upstream pages read
    /// until the caller's page is full (or the walk's bound), rebuilt from
    /// the caller's entries.
    async fn list(
        &self,
        kind: ObjectKind,
        asked: Asked,
        holder: &[&Upstream],
        pending: &mut Pending,
        live: &Live,
    ) -> Result<Reply, ApiError> {
        let own = owned::owned(&self.gw.pool, &self.caller.user.name, kind).await?;
        let reply = |page: serde_json::Value| {
            Reply::Local(echo::LocalReply {
                status: StatusCode::OK,
                body: echo::Body::Full(Bytes::from(page.to_string())),
                tokens: None,
            })
        };
        if own.is_empty() {
            // Nothing of the caller's to find: the upstream is not asked.
            return Ok(reply(Gathered::empty()));
        }
        let single = asked.before.is_some();
        let mut gathered = Gathered::new(own, asked.limit);
        let mut cursor = asked.after.clone();
        for _ in 0..lists::MAX_PAGES {
            let query = asked.upstream_query(kind, cursor.as_deref());
            let text = match self.list_page(query, holder, pending, live).await? {
                Ok(text) => text,
                Err(refused) => return Ok(refused),
            };
            let page = Page::parse(&text).ok_or_else(|| self.not_a_list(pending))?;
            let next = page.last_id().map(str::to_owned);
            if !gathered.take(page) || single || next.is_none() {
                break;
            }
            cursor = next;
        }
        Ok(reply(gathered.page()))
    }

    /// Gemini's list of the caller's own objects of `kind`: upstream
    /// pages read from the start until the caller's page is full (or the
    /// walk's bound), with the gateway's own page token.
    async fn gemini_list(
        &self,
        kind: ObjectKind,
        asked: gemini_lists::Asked,
        holder: &[&Upstream],
        pending: &mut Pending,
        live: &Live,
    ) -> Result<Reply, ApiError> {
        let own = owned::owned(&self.gw.pool, &self.caller.user.name, kind).await?;
        let mut gathered = gemini_lists::Gathered::new(own, asked);
        let mut token: Option<String> = None;
        for _ in 0..lists::MAX_PAGES {
            if gathered.is_empty_handed() {
                break; // nothing of the caller's to find
            }
            let query = gemini_lists::upstream_query(token.as_deref());
            let text = match self.list_page(query, holder, pending, live).await? {
                Ok(text) => text,
                Err(refused) => return Ok(refused),
            };
            let (entries, next) =
                gemini_lists::parse_page(&text, kind).ok_or_else(|| self.not_a_list(pending))?;
            if !gathered.take(entries) || next.is_none() {
                break;
            }
            token = next;
        }
        Ok(Reply::Local(echo::LocalReply {
            status: StatusCode::OK,
            body: echo::Body::Full(Bytes::from(gathered.page(kind).to_string())),
            tokens: None,
        }))
    }

    /// One upstream page of a list (`query` the upstream's): its body, or
    /// the upstream's refusal, which goes to the client as it is.
    async fn list_page(
        &self,
        query: String,
        holder: &[&Upstream],
        pending: &mut Pending,
        live: &Live,
    ) -> Result<Result<Bytes, Reply>, ApiError> {
        let out = Outgoing {
            query,
            ..Outgoing::new(self.req, self.endpoint, None)
        };
        let sent = self
            .send(
                live,
                holder,
                &out,
                &mut RequestBody::None,
                Accounting::default(),
                pending,
            )
            .await?;
        let res = match sent {
            Reply::Upstream(Answer::Live(res), ..) if res.status().is_success() => res,
            other => return Ok(Err(other)),
        };
        let (_, _, text) = read_whole(res).await?;
        Ok(Ok(text))
    }

    fn not_a_list(&self, pending: &Pending) -> ApiError {
        ApiError::Upstream(format!(
            "The upstream `{}` sent a list that is not one.",
            self.upstream_name(pending)
        ))
    }

    fn upstream_name(&self, pending: &Pending) -> String {
        pending
            .record
            .upstream
            .as_deref()
            .unwrap_or_default()
            .to_owned()
    }

    /// Takes a parallel slot of each account with a parallel limit.
    async fn start(&self, pending: &mut Pending) -> Result<(), ApiError> {
        let mut asked = 0;
        loop {
            match crate::limits::start(&self.caller.accounts()) {
                Ok(running) => {
                    pending.running = running;
                    return Ok(());
                }
                Err(Busy::Full(limit, team)) => {
                    return Err(ApiError::parallel(limit, team.as_deref()))
                }
                Err(Busy::Short(short)) => self.lease(&short, &mut asked).await?,
            }
        }
    }

    /// Takes what the request needs of the caller's limits.
    async fn admit(&self, pending: &mut Pending, want: Want) -> Result<(), ApiError> {
        if !self.caller.limited() {
            return Ok(());
        }
        let mut asked = 0;
        loop {
            let record = &mut pending.record;
            let accounts = self.caller.accounts();
            match crate::limits::admit(&accounts, want, record.at, Instant::now()) {
                Ok(reservation) => {
                    record.reservation = reservation;
                    return Ok(());
                }
                Err(Refusal::Share(short)) => self.lease(&short, &mut asked).await?,
                Err(refused) => return Err(refused.into()),
            }
        }
    }

    /// Gets more of a limit this instance shares with others (`asked`:
    /// how often this request asked already), or the refusal.
    async fn lease(&self, short: &Shortfall, asked: &mut u32) -> Result<(), ApiError> {
        // Others give back what they do not use within a heartbeat; a
        // request waits for at most two.
        const WAITS: u32 = 2;
        let Some(leases) = &self.gw.leases else {
            return Err(short.refused(1));
        };
        *asked += 1;
        match leases.grow(short).await {
            Outcome::Granted if *asked <= WAITS + 1 => Ok(()),
            Outcome::Wait if *asked <= WAITS => {
                actix_web::rt::time::sleep(crate::cluster::HEARTBEAT).await;
                Ok(())
            }
            Outcome::Full { retry_after } => Err(short.refused(retry_after)),
            Outcome::Granted | Outcome::Wait => Err(short.refused(1)),
        }
    }

    /// Forwards to `candidates`, in order.
    async fn send(
        &self,
        live: &Live,
        candidates: &[&Upstream],
        out: &Outgoing<'_>,
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
        match failover::with_failover(self.clients, candidates, &scrub, out, body).await {
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

/// The name under which models no upstream serves, and paths the gateway
/// does not know, are recorded.
pub const UNKNOWN: &str = "(unknown)";

/// The longest model name: a name is printable ASCII.
pub const MAX_MODEL_NAME: usize = 256;

/// A model name is at most 256 bytes of printable ASCII, else 400 naming
/// the limit, before anything is recorded.
fn check_model_name(model: &str) -> Result<(), ApiError> {
    let fits = !model.is_empty()
        && model.len() <= MAX_MODEL_NAME
        && model.bytes().all(|b| b.is_ascii_graphic());
    if fits {
        return Ok(());
    }
    Err(ApiError::BadRequest(format!(
        "`model` must be 1 to {MAX_MODEL_NAME} printable ASCII characters without spaces; this one is {} bytes{}.",
        model.len(),
        if model.bytes().all(|b| b.is_ascii_graphic()) { "" } else { " with other characters" }
    )))
}

/// Query parameters that name account objects (as an upstream decodes
/// them): they must be the caller's own like any other reference.
fn query_refs(query: &str) -> Vec<Ref> {
    if query.is_empty() {
        return Vec::new();
    }
    url::form_urlencoded::parse(query.as_bytes())
        .filter_map(|(name, value)| {
            let name = name.trim_end_matches("[]");
            probe::reference_kind(name).map(|kind| Ref {
                kind,
                id: value.into_owned(),
            })
        })
        .collect()
}
