//! Gemini's lists of account objects (`GET /v1beta/cachedContents`): the
//! upstream lists every user's, and its `pageToken`s are opaque, so a
//! caller's page is gathered from the upstream's pages read from the
//! start, and the `nextPageToken` the caller gets is the gateway's own:
//! the name of the page's last entry, one of the caller's, checked as any
//! reference when it comes back.

use crate::objects::ObjectKind;
use serde_json::{json, Value};
use std::collections::HashSet;

/// The largest page Gemini's lists give (and the gateway asks for).
const MOST: usize = 1000;
/// The page size when the caller names none (Google's default).
const DEFAULT: usize = 100;

/// The list's query, as the client asked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub size: usize,
    /// The last entry of the caller's page before (a token the gateway
    /// gave).
    pub after: Option<String>,
}

impl Asked {
    pub fn parse(query: &str) -> Result<Asked, String> {
        let mut asked = Asked {
            size: DEFAULT,
            after: None,
        };
        let mut seen = HashSet::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let once = matches!(&*name, "pageSize" | "pageToken");
            if once && !seen.insert(name.to_string()) {
                return Err(format!("The query names `{name}` more than once."));
            }
            match &*name {
                "pageSize" => {
                    asked.size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MOST).contains(n))
                        .ok_or_else(|| format!("`pageSize` must be a number from 1 to {MOST}."))?;
                }
                "pageToken" if !value.is_empty() => asked.after = Some(value.into_owned()),
                // The key (`?key=`), `alt`, `$fields`: nothing the list is.
                _ => {}
            }
        }
        Ok(asked)
    }
}

/// The field a list of `kind` keeps its entries in.
pub fn field(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::CachedContents => "cachedContents",
        _ => "files",
    }
}

/// The query of an upstream page (the first without `token`).
pub fn upstream_query(token: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("pageSize", &MOST.to_string());
    if let Some(t) = token {
        q.append_pair("pageToken", t);
    }
    q.finish()
}

/// One upstream page: its entries and the token of the next.
pub fn parse_page(body: &[u8], kind: ObjectKind) -> Option<(Vec<Value>, Option<String>)> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    if !v.is_object() {
        return None;
    }
    // An empty list comes as `{}`.
    let entries = match v.get_mut(field(kind)).map(Value::take) {
        Some(Value::Array(entries)) => entries,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return None,
    };
    let next = v["nextPageToken"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    Some((entries, next))
}

/// The caller's page, gathered from upstream pages.
pub struct Gathered {
    own: HashSet<String>,
    asked: Asked,
    /// Whether the walk is past the caller's token.
    past: bool,
    entries: Vec<Value>,
    /// Another of the caller's entries was seen after the page filled.
    more: bool,
}

impl Gathered {
    pub fn new(own: HashSet<String>, asked: Asked) -> Gathered {
        Gathered {
            own,
            past: asked.after.is_none(),
            asked,
            entries: Vec::new(),
            more: false,
        }
    }

    /// Whether the caller owns none of the kind (the upstream need not be
    /// asked).
    pub fn is_empty_handed(&self) -> bool {
        self.own.is_empty()
    }

    /// Takes an upstream page's entries; whether the walk goes on.
    pub fn take(&mut self, page: Vec<Value>) -> bool {
        for e in page {
            let Some(name) = e["name"].as_str() else {
                continue;
            };
            if !self.past {
                self.past = self.asked.after.as_deref() == Some(name);
                continue;
            }
            if !self.own.contains(name) {
                continue;
            }
            if self.entries.len() == self.asked.size {
                self.more = true;
                return false;
            }
            self.entries.push(e);
        }
        true
    }

    /// The page, with the gateway's token for the next where there is one.
    pub fn page(self, kind: ObjectKind) -> Value {
        let mut page = json!({});
        if self.entries.is_empty() {
            return page;
        }
        if self.more {
            page["nextPageToken"] = self.entries[self.entries.len() - 1]["name"].clone();
        }
        page[field(kind)] = Value::Array(self.entries);
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: ObjectKind = ObjectKind::CachedContents;

    fn entries(names: &[&str]) -> Vec<Value> {
        names.iter().map(|n| json!({"name": n})).collect()
    }

    fn gather(own: &[&str], asked: &str, pages: &[&[&str]]) -> Value {
        let own = own.iter().map(|s| s.to_string()).collect();
        let mut g = Gathered::new(own, Asked::parse(asked).unwrap());
        for p in pages {
            if !g.take(entries(p)) {
                break;
            }
        }
        g.page(KIND)
    }

    #[test]
    fn a_page_holds_the_callers_own_and_the_token_is_the_gateways() {
        let own = ["c/a1", "c/a2", "c/a3"];
        let pages: &[&[&str]] = &[&["c/b1", "c/a1", "c/b2"], &["c/a2", "c/b3", "c/a3"]];
        let v = gather(&own, "pageSize=2", pages);
        assert_eq!(v["cachedContents"], json!(entries(&["c/a1", "c/a2"])));
        assert_eq!(v["nextPageToken"], "c/a2");
        let v = gather(&own, "pageSize=2&pageToken=c%2Fa2", pages);
        assert_eq!(v["cachedContents"], json!(entries(&["c/a3"])));
        assert!(v.get("nextPageToken").is_none());
        // None of the caller's: Google's empty list.
        assert_eq!(gather(&[], "", pages), json!({}));
        assert_eq!(gather(&own, "pageToken=c%2Fa3", pages), json!({}));
    }

    #[test]
    fn queries_are_checked() {
        assert_eq!(Asked::parse("key=k&alt=json").unwrap().size, DEFAULT);
        for bad in [
            "pageSize=0",
            "pageSize=1001",
            "pageSize=x",
            "pageSize=1&pageSize=2",
        ] {
            assert!(Asked::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_page(
                br#"{"cachedContents": [{"name": "x"}], "nextPageToken": "t"}"#,
                KIND
            ),
            Some((entries(&["x"]), Some("t".into())))
        );
        assert_eq!(parse_page(b"{}", KIND), Some((vec![], None)));
        assert_eq!(parse_page(br#"{"cachedContents": 1}"#, KIND), None);
        assert_eq!(upstream_query(Some("a b")), "pageSize=1000&pageToken=a+b");
    }
}
