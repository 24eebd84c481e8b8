//! Echo's Gemini API (`/v1beta/models/{model}:{method}`): `generateContent`
//! answers the last user turn (or the function's response when the turn
//! brings one), or the `functionCall` a forced `toolConfig` asks for
//! (`tools.rs`); `streamGenerateContent` sends it word by word as
//! server-sent events, each with the usage so far; `countTokens`,
//! `embedContent` and `batchEmbedContents` as Google answers them.

use super::tools::{self, Call, Choice};
use super::{content_text, embed, events_reply, json_reply, not_found, prompt_tokens, words};
use super::{LocalReply, TOKENS_PER_MESSAGE};
use crate::usage::{count_tokens, Tokens};
use actix_web::http::{Method, StatusCode};
use bytes::Bytes;
use serde_json::{json, Value};

pub(super) fn respond(method: &Method, endpoint: &str, request: &Value) -> LocalReply {
    let Some((model, call)) = endpoint
        .strip_prefix("/models/")
        .and_then(|rest| rest.rsplit_once(':'))
    else {
        return not_found(method, endpoint);
    };
    match call {
        "generateContent" => generate(model, request, false),
        "streamGenerateContent" => generate(model, request, true),
        "countTokens" => {
            // Google's SDKs may wrap the request (`generateContentRequest`).
            let inner = request.get("generateContentRequest").unwrap_or(request);
            let n = prompt(model, inner);
            json_reply(StatusCode::OK, &json!({"totalTokens": n}), None)
        }
        "embedContent" => {
            let (values, n) = embedding(model, &request["content"]);
            let tokens = input_tokens(n);
            json_reply(
                StatusCode::OK,
                &json!({"embedding": {"values": values}}),
                Some(tokens),
            )
        }
        "batchEmbedContents" => {
            let mut total = 0;
            let embeddings: Vec<Value> = request["requests"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let (values, n) = embedding(model, &r["content"]);
                    total += n;
                    json!({"values": values})
                })
                .collect();
            let body = json!({"embeddings": embeddings});
            json_reply(StatusCode::OK, &body, Some(input_tokens(total)))
        }
        _ => not_found(method, endpoint),
    }
}

fn input_tokens(prompt: i64) -> Tokens {
    Tokens {
        prompt,
        completion: 0,
        cached: 0,
        cache_written: 0,
    }
}

fn embedding(model: &str, content: &Value) -> (Vec<f32>, i64) {
    let text = content_text(&content["parts"]);
    (embed(&text), count_tokens(model, &text))
}

/// The prompt's tokens: the system instruction and every turn.
fn prompt(model: &str, request: &Value) -> i64 {
    let system = request
        .get("systemInstruction")
        .or(request.get("system_instruction"))
        .map_or(0, |s| {
            TOKENS_PER_MESSAGE + count_tokens(model, &content_text(&s["parts"]))
        });
    let turns = request["contents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    system + prompt_tokens(model, turns.iter().map(|c| &c["parts"]))
}

fn generate(model: &str, request: &Value, stream: bool) -> LocalReply {
    let turns = request["contents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let last = turns.last();
    let parts = |c: &Value| c["parts"].as_array().cloned().unwrap_or_default();
    // The function's response, when the last turn brings one.
    let responded: Option<String> = last.and_then(|c| {
        let answers: Vec<String> = parts(c)
            .iter()
            .filter_map(|p| p.get("functionResponse").or(p.get("function_response")))
            .map(|r| match &r["response"]["result"] {
                Value::String(s) => s.clone(),
                Value::Null => r["response"].to_string(),
                other => other.to_string(),
            })
            .collect();
        (!answers.is_empty()).then(|| answers.join(" "))
    });
    let call = match responded {
        Some(_) => None,
        None => forced_call(request),
    };
    let reply = responded.unwrap_or_else(|| {
        let said = turns
            .iter()
            .rev()
            .find(|c| c["role"] != "model")
            .map(|c| content_text(&c["parts"]))
            .unwrap_or_default();
        structured(request).unwrap_or(said)
    });
    let said = match &call {
        Some(c) => format!("{}{}", c.name, c.arguments),
        None => reply.clone(),
    };
    let tokens = Tokens {
        prompt: prompt(model, request),
        completion: count_tokens(model, &said),
        cached: 0,
        cache_written: 0,
    };
    let usage = |completion: i64| {
        json!({"promptTokenCount": tokens.prompt, "candidatesTokenCount": completion,
               "totalTokenCount": tokens.prompt + completion})
    };
    let id = format!("echo{}", super::short_hash(&said));
    let chunk = |parts: Vec<Value>, finish: Option<&str>, completion: i64| {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        json!({"candidates": [candidate], "usageMetadata": usage(completion),
               "modelVersion": model, "responseId": id})
    };
    let call_part = |c: &Call| json!({"functionCall": {"name": c.name, "args": c.arguments}});
    if !stream {
        let parts = match &call {
            Some(c) => vec![call_part(c)],
            None => vec![json!({"text": reply})],
        };
        let body = chunk(parts, Some("STOP"), tokens.completion);
        return json_reply(StatusCode::OK, &body, Some(tokens));
    }
    // Each chunk carries the usage so far; the last one, all of it.
    let mut events: Vec<Value> = Vec::new();
    match &call {
        Some(c) => events.push(chunk(vec![call_part(c)], Some("STOP"), tokens.completion)),
        None => {
            let pieces = words(&reply);
            let mut so_far = String::new();
            for (i, w) in pieces.iter().enumerate() {
                so_far.push_str(w);
                let last = i + 1 == pieces.len();
                let completion = if last {
                    tokens.completion
                } else {
                    count_tokens(model, &so_far)
                };
                events.push(chunk(
                    vec![json!({"text": w})],
                    last.then_some("STOP"),
                    completion,
                ));
            }
            if pieces.is_empty() {
                events.push(chunk(vec![json!({"text": ""})], Some("STOP"), 0));
            }
        }
    }
    let chunks = events
        .iter()
        .map(|e| Bytes::from(format!("data: {e}\r\n\r\n")))
        .collect();
    events_reply(chunks, tokens)
}

/// A JSON reply where the request asks for one (`responseMimeType`
/// `application/json`): a value of its schema when it gives one (Gemini
/// CLI's router and checks parse it), else `{}`.
fn structured(request: &Value) -> Option<String> {
    let config = request
        .get("generationConfig")
        .or(request.get("generation_config"))?;
    let mime = config
        .get("responseMimeType")
        .or(config.get("response_mime_type"))?;
    if mime != "application/json" {
        return None;
    }
    let schema = [
        "responseJsonSchema",
        "responseSchema",
        "response_json_schema",
        "response_schema",
    ]
    .iter()
    .find_map(|k| config.get(*k));
    Some(schema.map_or_else(|| "{}".into(), |s| tools::example(s).to_string()))
}

/// The call `toolConfig.functionCallingConfig` forces: mode `ANY`, with
/// `allowedFunctionNames` (the first of them) or without (the first
/// function declared).
fn forced_call(request: &Value) -> Option<Call> {
    let config = request.get("toolConfig").or(request.get("tool_config"))?;
    let calling = config
        .get("functionCallingConfig")
        .or(config.get("function_calling_config"))?;
    if calling["mode"] != "ANY" {
        return None;
    }
    let allowed = calling
        .get("allowedFunctionNames")
        .or(calling.get("allowed_function_names"));
    let choice = match allowed.and_then(|a| a[0].as_str()) {
        Some(name) => Choice::Named(name),
        None => Choice::Any,
    };
    let declared = request["tools"]
        .as_array()?
        .iter()
        .flat_map(|t| {
            t.get("functionDeclarations")
                .or(t.get("function_declarations"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|f| {
            let schema = [
                "parametersJsonSchema",
                "parameters",
                "parameters_json_schema",
            ]
            .iter()
            .find_map(|k| f.get(*k))
            .unwrap_or(&Value::Null);
            Some((f["name"].as_str()?, schema))
        });
    tools::forced(choice, declared)
}

#[cfg(test)]
mod tests {
    use super::super::tests::call;
    use super::*;

    #[test]
    fn generate_plain_and_streamed_with_usage_in_every_chunk() {
        let request = json!({"contents": [{"role": "user", "parts": [{"text": "hello big world"}]}],
                             "systemInstruction": {"parts": [{"text": "Be brief."}]}});
        let (status, body, tokens) =
            call("/models/gemini-2.5-flash:generateContent", request.clone());
        assert_eq!(status, StatusCode::OK);
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        assert_eq!(
            v["candidates"][0]["content"]["parts"][0]["text"],
            "hello big world"
        );
        let t = tokens.unwrap();
        assert_eq!(v["usageMetadata"]["promptTokenCount"], t.prompt);
        assert_eq!(v["usageMetadata"]["candidatesTokenCount"], t.completion);
        let (_, chunks, _) = call("/models/gemini-2.5-flash:streamGenerateContent", request);
        assert_eq!(chunks.len(), 3);
        assert!(chunks
            .iter()
            .all(|c| c.starts_with("data: {") && c.ends_with("\r\n\r\n")));
        let last: Value =
            serde_json::from_str(chunks[2].trim_start_matches("data: ").trim()).unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(last["usageMetadata"]["candidatesTokenCount"], t.completion);
    }

    #[test]
    fn a_forced_function_call_then_text_for_its_response() {
        let tools = json!([{"functionDeclarations": [
            {"name": "read_file", "parametersJsonSchema": {"type": "object",
              "properties": {"path": {"type": "string"}}, "required": ["path"]}}]}]);
        let request = json!({"tools": tools,
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
            "contents": [{"role": "user", "parts": [{"text": "read it"}]}]});
        for method in ["generateContent", "streamGenerateContent"] {
            let (_, body, _) = call(&format!("/models/g:{method}"), request.clone());
            let v: Value =
                serde_json::from_str(body[0].trim_start_matches("data: ").trim()).unwrap();
            let call = &v["candidates"][0]["content"]["parts"][0]["functionCall"];
            assert_eq!(call["name"], "read_file", "{method}");
            assert_eq!(call["args"], json!({"path": "echo"}));
        }
        let next = json!({"tools": tools,
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
            "contents": [
                {"role": "user", "parts": [{"text": "read it"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "read_file", "args": {"path": "echo"}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "read_file",
                  "response": {"result": "file contents"}}}]}]});
        let (_, body, _) = call("/models/g:generateContent", next);
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        assert_eq!(
            v["candidates"][0]["content"]["parts"][0]["text"],
            "file contents"
        );
    }

    #[test]
    fn json_asked_for_is_json_of_the_schema() {
        let request = json!({"contents": [{"role": "user", "parts": [{"text": "route me"}]}],
            "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {
                "type": "object", "properties": {"model_choice": {"type": "string", "enum": ["flash", "pro"]},
                "reasoning": {"type": "string"}}, "required": ["reasoning", "model_choice"]}}});
        let (_, body, _) = call("/models/g:generateContent", request);
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        let text = v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap();
        let parsed: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            parsed,
            json!({"model_choice": "flash", "reasoning": "echo"})
        );
    }

    #[test]
    fn count_tokens_and_embeddings() {
        let request = json!({"contents": [{"parts": [{"text": "count me"}]}]});
        let (_, body, tokens) = call("/models/g:countTokens", request.clone());
        assert!(tokens.is_none());
        let n = serde_json::from_str::<Value>(&body[0]).unwrap()["totalTokens"].clone();
        let (_, _, t) = call("/models/g:generateContent", request);
        assert_eq!(n, t.unwrap().prompt);
        let (_, body, t) = call(
            "/models/e:embedContent",
            json!({"content": {"parts": [{"text": "x y"}]}}),
        );
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        assert!(!v["embedding"]["values"].as_array().unwrap().is_empty());
        assert_eq!(t.unwrap().prompt, 2);
        let (_, body, t) = call(
            "/models/e:batchEmbedContents",
            json!({"requests": [
            {"content": {"parts": [{"text": "x"}]}}, {"content": {"parts": [{"text": "y z"}]}}]}),
        );
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
        assert_eq!(t.unwrap().prompt, 3);
    }
}
