//! The mock's upstream account, as OpenAI keeps it: one store of objects
//! for every key (files, uploads, vector stores and their files, stored
//! responses and chat completions, conversations), lists paged with
//! `limit`, `after` and `order` (newest first by default) and their
//! `first_id`, `last_id`, `has_more`; references in bodies resolved against
//! the whole account (an upstream does not know the gateway's users);
//! responses whose usage grows with `previous_response_id` and the files
//! they read; background responses that finish when the test says.

use crate::mock::{sse, MockState, CACHED_TOKENS};
use actix_web::HttpResponse;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// Model names that make the account answer in particular ways.
pub mod account_models {
    /// A response of 100,000 input tokens.
    pub const BIG: &str = "mock-big";
    /// A deep-research job: 250,000 input and 60,000 output tokens.
    pub const DEEP: &str = "mock-deep";
    /// A reasoning stream that sends reasoning summaries and then stalls;
    /// the stored response is finished, with 20,000 output tokens.
    pub const REASONING: &str = "mock-reasoning";
}

/// The usage of a finished deep-research job.
pub const DEEP_USAGE: (i64, i64) = (250_000, 60_000);
/// The output tokens of the reasoning model's stored response.
pub const REASONING_OUTPUT: i64 = 20_000;

/// Finishes every background response still queued: each gets its usage.
pub fn finish_background(state: &MockState) {
    let mut objects = state.objects.lock().unwrap();
    for (_, v) in objects.iter_mut() {
        if v["object"] == "response" && v["status"] == "queued" {
            let (input, output) = if v["model"] == account_models::DEEP {
                DEEP_USAGE
            } else {
                (6, 2)
            };
            v["status"] = json!("completed");
            v["usage"] = json!({"input_tokens": input, "output_tokens": output,
                "total_tokens": input + output});
            v["output"] = json!([{"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "the report"}]}]);
        }
    }
}

type Objects = Vec<(String, Value)>;

fn find(objects: &Objects, id: &str) -> Option<Value> {
    objects
        .iter()
        .find(|(i, _)| i == id)
        .map(|(_, v)| v.clone())
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(
        json!({"error": {"message": "No such object", "type": "invalid_request_error", "code": null}}),
    )
}

/// A page of the objects of type `object`, as OpenAI pages them.
fn list(objects: &Objects, object: &str, query: &str, default_limit: usize) -> HttpResponse {
    let q: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let limit = get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(default_limit);
    let mut all: Vec<&Value> = objects
        .iter()
        .filter(|(_, v)| v["object"] == object)
        .map(|(_, v)| v)
        .collect();
    if get("order") != Some("asc") {
        all.reverse(); // newest first
    }
    let start = match get("after") {
        Some(after) => match all.iter().position(|v| v["id"] == after) {
            Some(i) => i + 1,
            None => return not_found(),
        },
        None => 0,
    };
    let end = match get("before") {
        Some(before) => match all.iter().position(|v| v["id"] == before) {
            Some(i) => i,
            None => return not_found(),
        },
        None => all.len(),
    };
    let rest = &all[start.min(end)..end];
    let page: Vec<Value> = rest.iter().take(limit).map(|v| (*v).clone()).collect();
    HttpResponse::Ok().json(json!({
        "object": "list",
        "first_id": page.first().map(|v| v["id"].clone()),
        "last_id": page.last().map(|v| v["id"].clone()),
        "has_more": rest.len() > limit,
        "data": page,
    }))
}

/// What the files a request reads (`input_file` parts) add to its input:
/// their bytes, at four a token.
fn file_tokens(objects: &Objects, request: &Value) -> i64 {
    let mut tokens = 0;
    let mut stack = vec![request];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if m.get("type") == Some(&json!("input_file")) {
                    if let Some(f) = m.get("file_id").and_then(|id| find(objects, id.as_str()?)) {
                        tokens += f["bytes"].as_i64().unwrap_or(0) / 4;
                    }
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    tokens
}

/// The account's answer, if the path is one of its objects'.
pub(crate) fn serve(
    state: &MockState,
    method: &str,
    path: &str,
    query: &str,
    json: &Value,
    body: &Bytes,
) -> Option<HttpResponse> {
    let mut objects = state.objects.lock().unwrap();
    let n = state.made.fetch_add(1, Ordering::SeqCst);
    let segments: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
    let created = |objects: &mut Objects, v: Value| {
        objects.push((v["id"].as_str().unwrap().to_owned(), v.clone()));
        HttpResponse::Ok().json(v)
    };
    Some(match (method, &segments[..]) {
        ("POST", ["files"]) => created(
            &mut objects,
            json!({"id": format!("file-{n}"), "object": "file", "bytes": body.len(), "purpose": "assistants"}),
        ),
        ("GET", ["files"]) => list(&objects, "file", query, 10_000),
        ("GET", ["vector_stores"]) => list(&objects, "vector_store", query, 20),
        ("GET", ["chat", "completions"]) => list(&objects, "chat.completion", query, 20),
        ("POST", ["vector_stores"]) => {
            for f in json["file_ids"].as_array().into_iter().flatten() {
                if find(&objects, f.as_str().unwrap_or_default()).is_none() {
                    return Some(not_found());
                }
            }
            created(
                &mut objects,
                json!({"id": format!("vs_{n}"), "object": "vector_store", "name": json["name"]}),
            )
        }
        ("POST", ["vector_stores", vs, "files"]) => {
            let file = json["file_id"].as_str().unwrap_or_default();
            if find(&objects, vs).is_none() || find(&objects, file).is_none() {
                return Some(not_found());
            }
            let attached =
                json!({"id": file, "object": "vector_store.file", "vector_store_id": vs});
            objects.push((format!("{vs}/{file}"), attached.clone()));
            HttpResponse::Ok().json(attached)
        }
        ("GET", ["vector_stores", vs, "files", file, "content"]) => {
            match find(&objects, &format!("{vs}/{file}")) {
                Some(_) => HttpResponse::Ok()
                    .json(json!({"object": "vector_store.file_content.page",
                    "data": [{"type": "text", "text": format!("content of {file}")}]})),
                None => not_found(),
            }
        }
        ("POST", ["uploads"]) => created(
            &mut objects,
            json!({"id": format!("upload_{n}"), "object": "upload"}),
        ),
        ("POST", ["uploads", _, "parts"]) => created(
            &mut objects,
            json!({"id": format!("part_{n}"), "object": "upload.part"}),
        ),
        ("POST", ["uploads", id, "complete"]) => {
            let file = json!({"id": format!("file-{n}"), "object": "file", "bytes": 0});
            objects.push((format!("file-{n}"), file.clone()));
            HttpResponse::Ok()
                .json(json!({"id": id, "object": "upload", "status": "completed", "file": file}))
        }
        // Served as the file's type says: an uploaded page is HTML.
        ("GET", ["files", id, "content"]) => match find(&objects, id) {
            Some(_) => HttpResponse::Ok()
                .content_type("text/html")
                .body(format!("content of {id}")),
            None => not_found(),
        },
        ("POST", ["conversations"]) => created(
            &mut objects,
            json!({"id": format!("conv_{n}"), "object": "conversation"}),
        ),
        ("POST", ["responses"]) if json["model"] != crate::mock::models::HANG => {
            return Some(respond(&mut objects, n, json));
        }
        ("POST", ["chat", "completions"]) if json["store"] == true => {
            let id = format!("chatcmpl-{n}");
            let reply = json!({"id": id, "object": "chat.completion", "created": 1, "model": json["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "stored"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}});
            created(&mut objects, reply)
        }
        ("GET", [kind, id, ..]) | ("POST", [kind, id, _, ..]) if is_kind(kind) => {
            match find(&objects, id) {
                Some(v) => HttpResponse::Ok().json(v),
                None => not_found(),
            }
        }
        ("GET", ["chat", "completions", id, ..]) => match find(&objects, id) {
            Some(v) => HttpResponse::Ok().json(v),
            None => not_found(),
        },
        ("DELETE", [kind, id]) if is_kind(kind) => {
            let before = objects.len();
            objects.retain(|(i, _)| i != id);
            if objects.len() == before {
                not_found()
            } else {
                HttpResponse::Ok().json(json!({"id": id, "deleted": true}))
            }
        }
        _ => return None,
    })
}

/// `POST /v1/responses`: stored unless `store: false`; its input the
/// previous response's input and output, the files it reads, and its own.
fn respond(objects: &mut Objects, n: usize, json: &Value) -> HttpResponse {
    let id = format!("resp_{n}");
    let model = json["model"].as_str().unwrap_or_default();
    let previous = json["previous_response_id"].as_str().map(|p| {
        find(objects, p).map(|v| {
            v["usage"]["input_tokens"].as_i64().unwrap_or(0)
                + v["usage"]["output_tokens"].as_i64().unwrap_or(0)
        })
    });
    let previous = match previous {
        Some(None) => return not_found(),
        Some(Some(tokens)) => tokens,
        None => 0,
    };
    let own = if model == account_models::BIG {
        100_000
    } else {
        6
    };
    let input = own + previous + file_tokens(objects, json);
    let tier = json["service_tier"].as_str().unwrap_or("default");
    let searched = json["tools"].as_array().into_iter().flatten().any(|t| {
        t["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("web_search"))
    });
    let mut output = vec![json!({"type": "message", "role": "assistant",
        "content": [{"type": "output_text", "text": "mock reply"}]})];
    if searched {
        output.insert(
            0,
            json!({"type": "web_search_call", "id": "ws_1", "status": "completed"}),
        );
    }
    let mut reply = json!({"id": id, "object": "response", "status": "completed", "model": model,
        "previous_response_id": json["previous_response_id"], "service_tier": tier,
        "output": output,
        "usage": {"input_tokens": input, "output_tokens": 2, "total_tokens": input + 2,
                  "input_tokens_details": {"cached_tokens": CACHED_TOKENS.min(input)}}});
    if json["background"] == true {
        reply["status"] = json!("queued");
        reply["usage"] = Value::Null;
        reply["output"] = json!([]);
    }
    if model == account_models::REASONING {
        // Finished upstream whatever becomes of the stream.
        reply["usage"] = json!({"input_tokens": 10, "output_tokens": REASONING_OUTPUT,
            "total_tokens": 10 + REASONING_OUTPUT,
            "output_tokens_details": {"reasoning_tokens": REASONING_OUTPUT - 2}});
    }
    if json["store"] != false {
        objects.push((id.clone(), reply.clone()));
    }
    if json["stream"] != true {
        return HttpResponse::Ok().json(reply);
    }
    let created = json!({"type": "response.created", "sequence_number": 0,
        "response": {"id": id, "object": "response", "status": "in_progress", "usage": null}});
    let head = format!("event: response.created\ndata: {created}\n\n");
    if model == account_models::REASONING {
        // Reasoning summaries, then only keep-alives while it thinks on:
        // the client gives up.
        let delta = json!({"type": "response.reasoning_summary_text.delta", "sequence_number": 1,
            "item_id": "rs_1", "delta": "Considering the question carefully. "});
        let events = std::iter::once(Bytes::from(head))
            .chain(std::iter::repeat_n(sse(delta), 20))
            .map(Ok::<_, std::convert::Infallible>);
        use futures_util::StreamExt;
        return HttpResponse::Ok()
            .content_type("text/event-stream")
            .streaming(futures_util::stream::iter(events).chain(keep_alive(": thinking\n\n")));
    }
    let done = json!({"type": "response.completed", "sequence_number": 1, "response": reply});
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .body(format!("{head}event: response.completed\ndata: {done}\n\n"))
}

/// `text` every 100 ms, for ever: an upstream still working after its
/// client went away (the gateway notices when it writes on).
pub fn keep_alive(
    text: &'static str,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures_util::stream::unfold((), move |()| async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Some((Ok(Bytes::from_static(text.as_bytes())), ()))
    })
}

fn is_kind(segment: &str) -> bool {
    [
        "files",
        "uploads",
        "vector_stores",
        "responses",
        "conversations",
    ]
    .contains(&segment)
}
