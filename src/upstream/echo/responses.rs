//! Echo's Responses API (`POST /v1/responses`): `input` is a string or a
//! list of items; the reply is the last user message (or the tool's output
//! when the input ends with one) as one output message, or the
//! `function_call` a forced `tool_choice` asks for (`tools.rs`). Streamed,
//! it sends the typed events the SDKs' stream helpers assemble.

use super::tools::{self, Call, Choice};
use super::{content_text, json_reply, model_of, pieces, prompt_tokens, short_hash, typed_sse};
use super::{words, LocalReply};
use crate::usage::{count_tokens, Tokens};
use actix_web::http::StatusCode;
use serde_json::{json, Value};

pub(super) fn response(request: &Value) -> LocalReply {
    let model = model_of(request);
    // The conversation as (role, content): a string input is one user
    // message; a tool's output and a call count as the tool's and the
    // assistant's turns.
    let items: Vec<(&str, &Value)> = match &request["input"] {
        text @ Value::String(_) => vec![("user", text)],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i["type"].as_str() {
                Some("function_call_output" | "custom_tool_call_output") => {
                    Some(("tool", &i["output"]))
                }
                Some("function_call") => Some(("assistant", &i["arguments"])),
                Some("custom_tool_call") => Some(("assistant", &i["input"])),
                _ => Some((i["role"].as_str()?, &i["content"])),
            })
            .collect(),
        _ => Vec::new(),
    };
    let tool_result = items.last().filter(|(role, _)| *role == "tool");
    let call = match tool_result {
        Some(_) => None,
        None => forced_call(request),
    };
    let reply = tool_result
        .or_else(|| items.iter().rev().find(|(role, _)| *role == "user"))
        .map(|(_, content)| content_text(content))
        .unwrap_or_default();
    let arguments = call.as_ref().map(|c| c.arguments.to_string());
    let said = match (&call, &arguments) {
        (Some(c), Some(a)) => format!("{}{a}", c.name),
        _ => reply.clone(),
    };
    let instructions = request.get("instructions").filter(|v| v.is_string());
    let contents = items.iter().map(|(_, content)| *content);
    let tokens = Tokens {
        prompt: prompt_tokens(model, instructions.into_iter().chain(contents)),
        completion: count_tokens(model, &said),
        cached: 0,
        cache_written: 0,
    };
    let hash = short_hash(&said);
    let id = format!("resp_echo{hash}");
    let item_id = match call {
        Some(_) => format!("fc_echo{hash}"),
        None => format!("msg_echo{hash}"),
    };
    let created = chrono::Utc::now().timestamp();
    let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
    // The one output item, as it is when `status`.
    let item = |status: &str, done: bool| match (&call, &arguments) {
        (Some(c), Some(a)) => json!({"id": item_id, "type": "function_call", "status": status,
            "arguments": if done { a.as_str() } else { "" }, "call_id": c.id("call_"),
            "name": c.name}),
        _ => json!({"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": if done { vec![part(&reply)] } else { vec![] }}),
    };
    let object = |status: &str, output: Vec<Value>, usage: Value| {
        json!({
            "id": id, "object": "response", "created_at": created,
            "completed_at": if status == "completed" { json!(created) } else { Value::Null },
            "status": status, "error": null, "incomplete_details": null,
            "instructions": request["instructions"], "max_output_tokens": request["max_output_tokens"],
            "model": model, "output": output, "parallel_tool_calls": true,
            "previous_response_id": request["previous_response_id"],
            "store": false, "temperature": 1.0, "top_p": 1.0,
            "tools": request.get("tools").cloned().unwrap_or_else(|| json!([])),
            "tool_choice": request.get("tool_choice").cloned().unwrap_or_else(|| json!("auto")),
            "text": {"format": {"type": "text"}}, "truncation": "disabled",
            "metadata": request.get("metadata").cloned().unwrap_or_else(|| json!({})),
            "usage": usage
        })
    };
    let usage = json!({
        "input_tokens": tokens.prompt, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": tokens.completion, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": tokens.prompt + tokens.completion
    });
    let done = object("completed", vec![item("completed", true)], usage);
    if request["stream"] != true {
        return json_reply(StatusCode::OK, &done, Some(tokens));
    }
    // Events about the one output item (and its one text part).
    let item_event = |kind: &str, fields: Value| {
        let mut event = json!({"type": kind, "item_id": item_id, "output_index": 0});
        if call.is_none() {
            event["content_index"] = json!(0);
        }
        if let (Some(e), Value::Object(f)) = (event.as_object_mut(), fields) {
            e.extend(f);
        }
        event
    };
    let started = object("in_progress", vec![], Value::Null);
    let mut events = vec![
        json!({"type": "response.created", "response": started}),
        json!({"type": "response.in_progress", "response": started}),
        json!({"type": "response.output_item.added", "output_index": 0,
               "item": item("in_progress", false)}),
    ];
    match (&call, &arguments) {
        (Some(c), Some(a)) => {
            events.extend(pieces(a).into_iter().map(|p| {
                item_event(
                    "response.function_call_arguments.delta",
                    json!({"delta": p}),
                )
            }));
            events.push(item_event(
                "response.function_call_arguments.done",
                json!({"arguments": a, "name": c.name}),
            ));
        }
        _ => {
            events.push(item_event(
                "response.content_part.added",
                json!({"part": part("")}),
            ));
            events.extend(words(&reply).into_iter().map(|w| {
                item_event(
                    "response.output_text.delta",
                    json!({"delta": w, "logprobs": []}),
                )
            }));
            events.extend([
                item_event(
                    "response.output_text.done",
                    json!({"text": reply, "logprobs": []}),
                ),
                item_event("response.content_part.done", json!({"part": part(&reply)})),
            ]);
        }
    }
    events.extend([
        json!({"type": "response.output_item.done", "output_index": 0,
               "item": done["output"][0]}),
        json!({"type": "response.completed", "response": done}),
    ]);
    typed_sse(events, tokens)
}

/// The call `tool_choice` forces: `required`, a function by name, or
/// `allowed_tools` in mode `required` (its first function).
fn forced_call(request: &Value) -> Option<Call> {
    let choice = &request["tool_choice"];
    let choice = match choice["type"].as_str() {
        _ if choice == "required" => Choice::Any,
        Some("function") => Choice::Named(choice["name"].as_str()?),
        Some("allowed_tools") if choice["mode"] == "required" => {
            Choice::Named(choice["tools"][0]["name"].as_str()?)
        }
        _ => Choice::Auto,
    };
    let functions = request["tools"]
        .as_array()?
        .iter()
        .filter(|t| t["type"] == "function")
        .filter_map(|t| Some((t["name"].as_str()?, &t["parameters"])));
    tools::forced(choice, functions)
}

#[cfg(test)]
mod tests {
    use super::super::tests::call;
    use super::*;

    /// Each chunk as (event name, data), checked to be one typed event
    /// whose name is its `type` and numbered in order.
    fn typed_events(chunks: &[String]) -> Vec<(String, Value)> {
        let events: Vec<(String, Value)> = chunks
            .iter()
            .map(|c| {
                let (name, data) = c
                    .strip_prefix("event: ")
                    .and_then(|c| c.strip_suffix("\n\n"))
                    .and_then(|c| c.split_once("\ndata: "))
                    .unwrap_or_else(|| panic!("not one typed event: {c:?}"));
                (name.to_owned(), serde_json::from_str(data).unwrap())
            })
            .collect();
        for (n, (name, data)) in events.iter().enumerate() {
            assert_eq!(data["type"], name.as_str());
            assert_eq!(data["sequence_number"], n);
        }
        events
    }

    #[test]
    fn responses_echo_the_last_user_input_with_usage() {
        let (status, body, tokens) = call(
            "/responses",
            json!({"model": "gpt-4o", "instructions": "be brief", "input": [
                {"role": "user", "content": "first"},
                {"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": "hello world"}]}
            ]}),
        );
        assert_eq!(status, StatusCode::OK);
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        assert_eq!(v["object"], "response");
        assert_eq!(v["status"], "completed");
        assert_eq!(v["output"][0]["content"][0]["text"], "hello world");
        let t = tokens.unwrap();
        assert_eq!(t.completion, 2);
        // Instructions and two messages, each with the chat format's overhead.
        assert_eq!(t.prompt, 3 * 3 + 3 + 2 + 1 + 2);
        assert_eq!(v["usage"]["input_tokens"], t.prompt);
        assert_eq!(v["usage"]["total_tokens"], t.prompt + t.completion);
        let (_, body, _) = call("/responses", json!({"model": "m", "input": "just text"}));
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        assert_eq!(v["output"][0]["content"][0]["text"], "just text");
    }

    #[test]
    fn responses_stream_typed_numbered_events_ending_in_completed() {
        let (_, chunks, tokens) = call(
            "/responses",
            json!({"model": "m", "stream": true, "input": "a b c"}),
        );
        let events = typed_events(&chunks);
        let deltas: String = events
            .iter()
            .filter(|(name, _)| name == "response.output_text.delta")
            .map(|(_, d)| d["delta"].as_str().unwrap())
            .collect();
        assert_eq!(deltas, "a b c");
        let (last, done) = events.last().unwrap();
        assert_eq!(last, "response.completed");
        assert_eq!(done["response"]["output"][0]["content"][0]["text"], "a b c");
        assert_eq!(
            done["response"]["usage"]["output_tokens"],
            tokens.unwrap().completion
        );
        assert_eq!(events[0].0, "response.created");
        assert!(events[0].1["response"]["usage"].is_null());
    }

    #[test]
    fn a_forced_function_call_plain_and_streamed_then_text_for_its_output() {
        let tools = json!([{"type": "web_search"}, {"type": "function", "name": "shell",
            "parameters": {"type": "object", "properties": {"command": {"type": "array",
              "items": {"type": "string"}, "minItems": 1}}, "required": ["command"]}}]);
        for choice in [
            json!("required"),
            json!({"type": "function", "name": "shell"}),
            json!({"type": "allowed_tools", "mode": "required",
                   "tools": [{"type": "function", "name": "shell"}]}),
        ] {
            let req = json!({"model": "m", "tools": tools, "tool_choice": choice, "input": "ls"});
            let (_, body, _) = call("/responses", req.clone());
            let v: Value = serde_json::from_str(&body[0]).unwrap();
            let item = &v["output"][0];
            assert_eq!(item["type"], "function_call");
            assert_eq!(item["name"], "shell");
            assert_eq!(item["arguments"], r#"{"command":["echo"]}"#);
            assert!(item["call_id"].as_str().unwrap().starts_with("call_"));

            let mut streamed = req;
            streamed["stream"] = json!(true);
            let (_, chunks, _) = call("/responses", streamed);
            let events = typed_events(&chunks);
            let args: String = events
                .iter()
                .filter(|(n, _)| n == "response.function_call_arguments.delta")
                .map(|(_, d)| d["delta"].as_str().unwrap())
                .collect();
            assert_eq!(args, r#"{"command":["echo"]}"#);
            let (last, done) = events.last().unwrap();
            assert_eq!(last, "response.completed");
            assert_eq!(done["response"]["output"][0], *item);
        }
        let next = json!({"model": "m", "tools": tools, "tool_choice": "required", "input": [
            {"role": "user", "content": "ls"},
            {"type": "function_call", "call_id": "call_1", "name": "shell",
             "arguments": "{\"command\":[\"echo\"]}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "README.md"}]});
        let (_, body, _) = call("/responses", next);
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        assert_eq!(v["output"][0]["content"][0]["text"], "README.md");
    }
}
