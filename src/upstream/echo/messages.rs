//! The echo upstream's Anthropic Messages API: `POST /v1/messages` answers
//! the last user message (or the tool results it brings), or the
//! `tool_use` a forced `tool_choice` asks for (`tools.rs`), as one body or
//! as Anthropic's event sequence (`message_start` … `message_stop`), with
//! usage counted by the tokenizer; `POST /v1/messages/count_tokens`
//! answers the prompt's count.

use super::tools::{self, Call, Choice};
use super::{content_text, events_reply, json_reply, pieces, short_hash, words, LocalReply};
use super::{REPLY_PRIMING, TOKENS_PER_MESSAGE};
use crate::usage::{count_tokens, Tokens};
use actix_web::http::StatusCode;
use bytes::Bytes;
use serde_json::{json, Value};

fn model_of(request: &Value) -> &str {
    request["model"].as_str().unwrap_or("echo")
}

/// The prompt's tokens: the system prompt (a string or text blocks) and
/// every message, by the chat format's per-message count.
fn prompt_tokens(model: &str, request: &Value) -> i64 {
    let system = match &request["system"] {
        Value::Null => 0,
        s => TOKENS_PER_MESSAGE + count_tokens(model, &content_text(s)),
    };
    let messages: i64 = request["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|m| TOKENS_PER_MESSAGE + count_tokens(model, &content_text(&m["content"])))
        .sum();
    system + messages + REPLY_PRIMING
}

fn usage(t: Tokens) -> Value {
    json!({"input_tokens": t.prompt, "output_tokens": t.completion,
           "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
}

pub(super) fn messages(request: &Value) -> LocalReply {
    let model = model_of(request);
    let last_user = request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"));
    let brings_results = last_user.is_some_and(|m| {
        m["content"]
            .as_array()
            .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"))
    });
    let call = match brings_results {
        true => None,
        false => forced_call(request),
    };
    let reply = last_user
        .map(|m| content_text(&m["content"]))
        .unwrap_or_default();
    let said = match &call {
        Some(c) => format!("{}{}", c.name, c.arguments),
        None => reply.clone(),
    };
    let tokens = Tokens {
        prompt: prompt_tokens(model, request),
        completion: count_tokens(model, &said),
        cached: 0,
        cache_written: 0,
    };
    let id = format!("msg_echo{}", short_hash(&said));
    let stop = if call.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    let block = match &call {
        Some(c) => json!({"type": "tool_use", "id": c.id("toolu_"), "name": c.name,
                          "input": c.arguments}),
        None => json!({"type": "text", "text": reply}),
    };
    if request["stream"] != true {
        let body = json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": [block],
            "stop_reason": stop, "stop_sequence": null, "usage": usage(tokens)
        });
        return json_reply(StatusCode::OK, &body, Some(tokens));
    }
    let started = Tokens {
        completion: 1,
        ..tokens
    };
    let mut opened = block.clone();
    match &call {
        Some(_) => opened["input"] = json!({}),
        None => opened["text"] = json!(""),
    }
    let mut events = vec![
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": usage(started)
        }}),
        json!({"type": "content_block_start", "index": 0, "content_block": opened}),
        json!({"type": "ping"}),
    ];
    let delta = |d: Value| json!({"type": "content_block_delta", "index": 0, "delta": d});
    match &call {
        Some(c) => {
            let arguments = c.arguments.to_string();
            events.extend(
                pieces(&arguments)
                    .into_iter()
                    .map(|p| delta(json!({"type": "input_json_delta", "partial_json": p}))),
            );
        }
        None => events.extend(
            words(&reply)
                .into_iter()
                .map(|w| delta(json!({"type": "text_delta", "text": w}))),
        ),
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    events.push(json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": tokens.completion}}));
    events.push(json!({"type": "message_stop"}));
    let chunks = events
        .into_iter()
        .map(|e| {
            let name = e["type"].as_str().unwrap_or_default().to_owned();
            Bytes::from(format!("event: {name}\ndata: {e}\n\n"))
        })
        .collect();
    events_reply(chunks, tokens)
}

/// The call `tool_choice` forces: `any` (the first tool with a schema) or
/// a tool by name. Server tools (web search, …) have no schema: echo does
/// not call them.
fn forced_call(request: &Value) -> Option<Call> {
    let choice = &request["tool_choice"];
    let choice = match choice["type"].as_str() {
        Some("any") => Choice::Any,
        Some("tool") => Choice::Named(choice["name"].as_str()?),
        _ => Choice::Auto,
    };
    let declared = request["tools"]
        .as_array()?
        .iter()
        .filter_map(|t| Some((t["name"].as_str()?, t.get("input_schema")?)));
    tools::forced(choice, declared)
}

/// `count_tokens` is a request, not tokens used: no usage is reported.
pub(super) fn count_tokens_reply(request: &Value) -> LocalReply {
    let n = prompt_tokens(model_of(request), request);
    json_reply(StatusCode::OK, &json!({"input_tokens": n}), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::echo::Body;
    use crate::usage::extract::{inspect_event, Reported, SseSplitter};

    #[test]
    fn a_message_and_its_event_sequence() {
        let request = json!({"model": "claude-x", "max_tokens": 50, "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]});
        let plain = messages(&request);
        let Body::Full(body) = &plain.body else {
            panic!("one body")
        };
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["content"][0]["text"], "hello there");
        let t = plain.tokens.unwrap();
        assert_eq!(v["usage"]["input_tokens"], t.prompt);
        assert_eq!(v["usage"]["output_tokens"], t.completion);

        let mut streamed = request.clone();
        streamed["stream"] = json!(true);
        let Body::Events(chunks) = messages(&streamed).body else {
            panic!("events")
        };
        let text: String = chunks
            .iter()
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(names[0], "message_start");
        assert_eq!(names.last(), Some(&"message_stop"));
        assert!(names.contains(&"content_block_delta") && names.contains(&"message_delta"));
        // What the gateway's meter reads from the events is the usage.
        let mut read = Reported::default();
        SseSplitter::default().feed(text.as_bytes(), |e| {
            read = read.then(inspect_event(e).reported)
        });
        assert_eq!(read.tokens(), Some(t));
    }

    #[test]
    fn a_forced_tool_use_plain_and_streamed_then_text_for_its_result() {
        let tools = json!([{"type": "web_search_20250305", "name": "web_search"},
            {"name": "Bash", "input_schema": {"type": "object",
              "properties": {"command": {"type": "string"}}, "required": ["command"]}}]);
        for choice in [
            json!({"type": "any"}),
            json!({"type": "tool", "name": "Bash"}),
        ] {
            let request = json!({"model": "claude-x", "max_tokens": 50, "tools": tools,
                "tool_choice": choice, "messages": [{"role": "user", "content": "list files"}]});
            let Body::Full(body) = messages(&request).body else {
                panic!("one body")
            };
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["stop_reason"], "tool_use");
            let used = &v["content"][0];
            assert_eq!(
                (&used["type"], &used["name"]),
                (&json!("tool_use"), &json!("Bash"))
            );
            assert_eq!(used["input"], json!({"command": "echo"}));

            let mut streamed = request.clone();
            streamed["stream"] = json!(true);
            let Body::Events(chunks) = messages(&streamed).body else {
                panic!("events")
            };
            let text: String = chunks
                .iter()
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            let partial: String = text
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .filter_map(|e| Some(e["delta"]["partial_json"].as_str()?.to_owned()))
                .collect();
            assert_eq!(
                serde_json::from_str::<Value>(&partial).unwrap(),
                used["input"]
            );
            assert!(text.contains(r#""stop_reason":"tool_use""#));
        }
        let next = json!({"model": "claude-x", "max_tokens": 50, "tools": tools,
            "tool_choice": {"type": "any"}, "messages": [
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
              "name": "Bash", "input": {"command": "echo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
              "content": [{"type": "text", "text": "README.md"}]}]}]});
        let Body::Full(body) = messages(&next).body else {
            panic!("one body")
        };
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["content"][0]["text"], "README.md");
        assert_eq!(v["stop_reason"], "end_turn");
    }
}
