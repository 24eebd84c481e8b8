//! Gemini's resumable upload (`POST /upload/v1beta/files`): a start
//! answers, in `x-goog-upload-url`, where the file's bytes go, with the
//! upload's id in its query; the gateway records the upload as the
//! starter's and points that address at itself, so the bytes come
//! through the gateway, to the upload's upstream, for its owner only.
//! The last part's reply is the new file (`file.name`), the uploader's.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

const UPLOAD_URL: HeaderName = HeaderName::from_static("x-goog-upload-url");

/// The upload a start's reply begun (its `upload_id`), its address
/// rewritten to `origin` (the gateway as the client reached it). An
/// address the gateway cannot read is taken out: the client is never sent
/// to the upstream itself.
pub fn begun(headers: &mut HeaderMap, origin: &str) -> Option<String> {
    let taken = headers.remove(&UPLOAD_URL).next()?;
    let url = taken.to_str().ok()?;
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let id = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "upload_id")
        .map(|(_, id)| id.into_owned())
        .filter(|id| !id.is_empty())?;
    let here = format!("{origin}/upload/v1beta/files?{query}");
    headers.insert(UPLOAD_URL, HeaderValue::from_str(&here).ok()?);
    Some(id)
}

/// A part's reply names no upload address: a part cannot begin another.
pub fn no_address(headers: &mut HeaderMap) {
    headers.remove(&UPLOAD_URL);
}

/// The file a finished upload made (`files/abc`), if the reply is one.
pub fn finished(reply: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(reply).ok()?;
    let name = v["file"]["name"].as_str()?;
    let id = name.strip_prefix("files/")?;
    (!id.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_points_its_parts_at_the_gateway() {
        let mut headers = HeaderMap::new();
        headers.insert(
            UPLOAD_URL,
            HeaderValue::from_static(
                "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=AB-c_1&upload_protocol=resumable",
            ),
        );
        assert_eq!(
            begun(&mut headers, "http://gw:8080").as_deref(),
            Some("AB-c_1")
        );
        assert_eq!(
            headers.get(&UPLOAD_URL).unwrap(),
            "http://gw:8080/upload/v1beta/files?upload_id=AB-c_1&upload_protocol=resumable"
        );
        // No id, no upload, and no address to the upstream.
        let mut headers = HeaderMap::new();
        headers.insert(UPLOAD_URL, HeaderValue::from_static("https://x/upload?a=1"));
        assert_eq!(begun(&mut headers, "http://gw"), None);
        assert!(headers.get(&UPLOAD_URL).is_none());
        assert_eq!(begun(&mut HeaderMap::new(), "http://gw"), None);
    }

    #[test]
    fn the_last_part_makes_a_file() {
        let reply = br#"{"file": {"name": "files/f1", "uri": "https://x/v1beta/files/f1"}}"#;
        assert_eq!(finished(reply).as_deref(), Some("files/f1"));
        assert_eq!(finished(br#"{"file": {"name": "files/"}}"#), None);
        assert_eq!(finished(b"{}"), None);
    }
}
