//! What a Gemini request's path says: the model every rule goes by (the
//! body may repeat it, never name another) and whether the reply streams
//! (`:streamGenerateContent`, as server-sent events only: the gateway
//! reads a stream's usage event by event).

use super::probe::Probe;
use crate::catalogue::Entry;
use crate::error::ApiError;

/// Sets `probe`'s model and stream from the path of `entry`'s request
/// (`endpoint`, after the version), after checking that the body names no
/// other model.
pub fn read_path(
    entry: &Entry,
    endpoint: &str,
    query: &str,
    body: &[u8],
    probe: &mut Probe,
) -> Result<(), ApiError> {
    let segments: Vec<&str> = endpoint.trim_start_matches('/').split('/').collect();
    let Some((method, model)) = entry.call(&segments) else {
        return Ok(());
    };
    if model.contains('%') {
        return Err(ApiError::BadRequest(format!(
            "The model in the path is written with escapes (`{}`); write its name as it is.",
            model.chars().take(100).collect::<String>()
        )));
    }
    let same = |named: &str| named.strip_prefix("models/").unwrap_or(named) == model;
    if let Some(named) = probe.model.as_deref().filter(|n| !same(n)) {
        return Err(other_model(named, model));
    }
    if method == "batchEmbedContents" {
        // Each request of the batch names its model; all must be the path's.
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let named = v["requests"].as_array().into_iter().flatten();
        if let Some(other) = named.filter_map(|r| r["model"].as_str()).find(|n| !same(n)) {
            return Err(other_model(other, model));
        }
    }
    probe.model = Some(model.to_owned());
    probe.stream = method == "streamGenerateContent";
    if probe.stream && !query.split('&').any(|p| p == "alt=sse") {
        return Err(ApiError::BadRequest(
            "The gateway streams Gemini replies as server-sent events: add `alt=sse` to the query (Google's SDKs and Gemini CLI do)."
                .into(),
        ));
    }
    Ok(())
}

fn other_model(named: &str, model: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "The body names the model `{}`, the path `{model}`: the path's is the one used; leave the other out or make them the same.",
        named.chars().take(100).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{find, Api};
    use actix_web::http::Method;

    fn read(endpoint: &str, query: &str, body: &str) -> Result<Probe, ApiError> {
        let entry = find(&Method::POST, Api::V1beta, &endpoint[1..]).unwrap();
        let mut probe = Probe::read(body.as_bytes())?;
        read_path(entry, endpoint, query, body.as_bytes(), &mut probe)?;
        Ok(probe)
    }

    #[test]
    fn the_path_names_the_model_and_the_stream() {
        let p = read(
            "/models/gemini-2.5-flash:generateContent",
            "",
            r#"{"contents": [], "generationConfig": {"maxOutputTokens": 64, "candidateCount": 2}}"#,
        )
        .unwrap();
        assert_eq!(p.model.as_deref(), Some("gemini-2.5-flash"));
        assert!(!p.stream);
        assert_eq!((p.max_reply, p.replies), (Some(64), 2));
        let p = read(
            "/models/gemini-2.5-flash:streamGenerateContent",
            "alt=sse",
            r#"{"contents": [], "generation_config": {"max_output_tokens": 9}}"#,
        )
        .unwrap();
        assert!(p.stream);
        assert_eq!(p.max_reply, Some(9));
        // The body may repeat the path's model, not name another.
        let same = r#"{"model": "models/gemini-2.5-flash", "content": {"parts": []}}"#;
        assert!(read("/models/gemini-2.5-flash:embedContent", "", same).is_ok());
        let other = r#"{"model": "models/gemini-2.5-pro", "content": {"parts": []}}"#;
        assert!(read("/models/gemini-2.5-flash:embedContent", "", other).is_err());
        let batch =
            r#"{"requests": [{"model": "models/e", "content": {}}, {"model": "models/f"}]}"#;
        assert!(read("/models/e:batchEmbedContents", "", batch).is_err());
        let batch = r#"{"requests": [{"model": "models/e", "content": {}}]}"#;
        assert!(read("/models/e:batchEmbedContents", "", batch).is_ok());
    }

    #[test]
    fn refused_a_stream_without_sse_escapes_sizes_twice_and_foreign_objects() {
        let stream = "/models/m:streamGenerateContent";
        assert!(read(stream, "", "{}").is_err());
        assert!(read(stream, "alt=json", "{}").is_err());
        assert!(read("/models/m%2Dx:generateContent", "", "{}").is_err());
        for body in [
            r#"{"generationConfig": {"maxOutputTokens": -1}}"#,
            r#"{"generationConfig": {"maxOutputTokens": "9"}}"#,
            r#"{"generationConfig": {"maxOutputTokens": 1, "max_output_tokens": 2}}"#,
            r#"{"generationConfig": {}, "generation_config": {}}"#,
        ] {
            assert!(
                read("/models/m:generateContent", "", body).is_err(),
                "{body}"
            );
        }
        // Cached contents and the account's files are referenced, so that
        // only their owner may (the account's files are nobody's: not
        // served yet); public URLs are not.
        let p = read(
            "/models/m:generateContent",
            "",
            r#"{"cachedContent": "cachedContents/abc", "contents": [{"parts": [
                {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/xyz"}},
                {"file_data": {"file_uri": "https://www.youtube.com/watch?v=1"}}]}]}"#,
        )
        .unwrap();
        let kinds: Vec<_> = p.refs.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["cached_contents", "gemini_files"]);
    }
}
