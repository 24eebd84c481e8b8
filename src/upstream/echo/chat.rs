//! Echo's chat completions (`POST /v1/chat/completions`): the last user
//! message back, or the tool's result when the conversation ends with
//! one, or the call a forced `tool_choice` asks for (`tools.rs`); one
//! body, or chunks word by word with usage at the end when asked.

use super::tools::{self, Call, Choice};
use super::{content_text, json_reply, model_of, pieces, prompt_tokens, short_hash, sse};
use super::{usage_json, words, LocalReply};
use crate::usage::{count_tokens, Tokens};
use actix_web::http::StatusCode;
use serde_json::{json, Value};

pub(super) fn chat(request: &Value) -> LocalReply {
    let model = model_of(request);
    let messages = request["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let last = messages.last();
    let tool_result = last.filter(|m| m["role"] == "tool");
    let call = match tool_result {
        Some(_) => None,
        None => forced_call(request),
    };
    let reply = tool_result
        .or_else(|| messages.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| content_text(&m["content"]))
        .unwrap_or_default();
    let arguments = call.as_ref().map(|c| c.arguments.to_string());
    let said = match (&call, &arguments) {
        (Some(c), Some(a)) => format!("{}{a}", c.name),
        _ => reply.clone(),
    };
    let tokens = Tokens {
        prompt: prompt_tokens(model, messages.iter().map(|m| &m["content"])),
        completion: count_tokens(model, &said),
        cached: 0,
        cache_written: 0,
    };
    let id = format!("chatcmpl-echo{}", short_hash(&said));
    let created = chrono::Utc::now().timestamp();
    let finish = if call.is_some() { "tool_calls" } else { "stop" };
    if request["stream"] == true {
        let include_usage = request["stream_options"]["include_usage"] == true;
        let chunk = |delta: Value, finish: Value| {
            json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
            })
        };
        let mut events = Vec::new();
        match (&call, &arguments) {
            (Some(c), Some(a)) => {
                events.push(chunk(
                    json!({"role": "assistant", "content": null, "tool_calls": [{
                        "index": 0, "id": c.id("call_"), "type": "function",
                        "function": {"name": c.name, "arguments": ""}}]}),
                    Value::Null,
                ));
                events.extend(pieces(a).into_iter().map(|p| {
                    chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                        Value::Null,
                    )
                }));
            }
            _ => {
                events.push(chunk(
                    json!({"role": "assistant", "content": ""}),
                    Value::Null,
                ));
                events.extend(
                    words(&reply)
                        .into_iter()
                        .map(|w| chunk(json!({"content": w}), Value::Null)),
                );
            }
        }
        events.push(chunk(json!({}), json!(finish)));
        if include_usage {
            events.push(json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [], "usage": usage_json(tokens)
            }));
        }
        return sse(events, tokens);
    }
    let message = match (&call, &arguments) {
        (Some(c), Some(a)) => json!({"role": "assistant", "content": null, "refusal": null,
            "tool_calls": [{"id": c.id("call_"), "type": "function",
                            "function": {"name": c.name, "arguments": a}}]}),
        _ => json!({"role": "assistant", "content": reply, "refusal": null}),
    };
    let body = json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage_json(tokens)
    });
    json_reply(StatusCode::OK, &body, Some(tokens))
}

/// The call `tool_choice` forces: `required`, a function by name, or
/// `allowed_tools` in mode `required` (its first tool).
fn forced_call(request: &Value) -> Option<Call> {
    let choice = &request["tool_choice"];
    let choice = match choice["type"].as_str() {
        _ if choice == "required" => Choice::Any,
        Some("function") => Choice::Named(choice["function"]["name"].as_str()?),
        Some("allowed_tools") if choice["allowed_tools"]["mode"] == "required" => {
            Choice::Named(choice["allowed_tools"]["tools"][0]["function"]["name"].as_str()?)
        }
        _ => Choice::Auto,
    };
    let functions = request["tools"].as_array()?.iter().filter_map(|t| {
        let f = &t["function"];
        Some((f["name"].as_str()?, &f["parameters"]))
    });
    tools::forced(choice, functions)
}

#[cfg(test)]
mod tests {
    use super::super::tests::call;
    use super::*;

    #[test]
    fn chat_echoes_the_last_user_message_with_usage() {
        let (status, body, tokens) = call(
            "/chat/completions",
            json!({"model": "gpt-4o", "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "hello world"}]}
            ]}),
        );
        assert_eq!(status, StatusCode::OK);
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "hello world");
        let t = tokens.unwrap();
        assert_eq!(t.completion, 2);
        assert_eq!(t.prompt, 3 * 3 + 3 + 1 + 1 + 2);
        assert_eq!(v["usage"]["total_tokens"], t.prompt + t.completion);
    }

    #[test]
    fn chat_streams_word_by_word_and_usage_only_when_asked() {
        let req = json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "a b c"}]});
        let (_, chunks, _) = call("/chat/completions", req.clone());
        assert_eq!(chunks.len(), 1 + 3 + 1 + 1);
        assert_eq!(chunks.last().unwrap(), "data: [DONE]\n\n");
        assert!(chunks.iter().all(|c| !c.contains("\"usage\"")));
        let mut with_usage = req;
        with_usage["stream_options"] = json!({"include_usage": true});
        let (_, chunks, _) = call("/chat/completions", with_usage);
        assert!(chunks[chunks.len() - 2].contains("\"usage\""));
    }

    fn weather() -> Value {
        json!([{"type": "function", "function": {"name": "weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
    }

    #[test]
    fn a_forced_call_plain_and_streamed_then_text_for_its_result() {
        for choice in [
            json!("required"),
            json!({"type": "function", "function": {"name": "weather"}}),
            json!({"type": "allowed_tools", "allowed_tools": {"mode": "required",
                   "tools": [{"type": "function", "function": {"name": "weather"}}]}}),
        ] {
            let req = json!({"model": "m", "tools": weather(), "tool_choice": choice,
                             "messages": [{"role": "user", "content": "Oslo?"}]});
            let (_, body, tokens) = call("/chat/completions", req.clone());
            let v: Value = serde_json::from_str(&body[0]).unwrap();
            let choice0 = &v["choices"][0];
            assert_eq!(choice0["finish_reason"], "tool_calls");
            let tc = &choice0["message"]["tool_calls"][0];
            assert_eq!(tc["function"]["name"], "weather");
            assert_eq!(tc["function"]["arguments"], r#"{"city":"echo"}"#);
            assert!(tokens.unwrap().completion > 0);

            let mut streamed = req;
            streamed["stream"] = json!(true);
            let (_, chunks, _) = call("/chat/completions", streamed);
            let args: String = chunks
                .iter()
                .filter_map(|c| c.strip_prefix("data: ")?.trim().parse::<Value>().ok())
                .filter_map(|c| {
                    Some(
                        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                            .as_str()?
                            .to_owned(),
                    )
                })
                .collect();
            assert_eq!(args, r#"{"city":"echo"}"#);
            assert!(chunks[chunks.len() - 2].contains(r#""finish_reason":"tool_calls""#));
        }
        let next = json!({"model": "m", "tools": weather(), "tool_choice": "required", "messages": [
            {"role": "user", "content": "Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
              "function": {"name": "weather", "arguments": "{\"city\":\"echo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"}]});
        let (_, body, _) = call("/chat/completions", next);
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "sunny, 21 C");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        // Not forced: text, even with tools.
        let auto = json!({"model": "m", "tools": weather(), "messages": [{"role": "user", "content": "hi"}]});
        let (_, body, _) = call("/chat/completions", auto);
        assert!(body[0].contains(r#""content":"hi""#));
    }
}
