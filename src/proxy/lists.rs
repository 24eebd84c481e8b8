//! Lists of account objects (`GET /v1/files`, `/v1/vector_stores`,
//! `/v1/chat/completions`): the upstream lists every user's, so a page is
//! rebuilt from the caller's own entries. `first_id`, `last_id` and
//! `has_more` describe that page; a cursor (`after`, `before`) must be one
//! of the caller's own objects; and where the upstream's page holds too
//! few of them, the next upstream pages are read (up to `MAX_PAGES`), so
//! that walking every page with `after=` yields exactly the caller's
//! objects, each once.

use super::probe::Ref;
use crate::objects::ObjectKind;
use serde_json::{json, Value};
use std::collections::HashSet;

/// Upstream pages read for one page of the caller's: beyond it the page
/// ends where the walk stopped (`has_more` true, `last_id` the last own
/// entry), or, with none found, answers an empty page.
pub const MAX_PAGES: usize = 20;

/// The list's query, as the client asked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// Entries wanted on the page (the API's default where not given).
    pub limit: usize,
    pub after: Option<String>,
    pub before: Option<String>,
    /// Every other parameter, passed on as it came.
    pub rest: Vec<(String, String)>,
}

/// The page size each list takes at most, and gives by default.
fn limits(kind: ObjectKind) -> (usize, usize) {
    match kind {
        ObjectKind::Files => (10_000, 10_000),
        _ => (100, 20),
    }
}

impl Asked {
    /// Reads a list's query (as an upstream decodes it).
    pub fn parse(kind: ObjectKind, query: &str) -> Result<Asked, String> {
        let (most, default) = limits(kind);
        let mut asked = Asked {
            limit: default,
            after: None,
            before: None,
            rest: Vec::new(),
        };
        let mut seen = HashSet::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let once = matches!(&*name, "limit" | "after" | "before");
            if once && !seen.insert(name.to_string()) {
                return Err(format!("The query names `{name}` more than once."));
            }
            match &*name {
                "limit" => {
                    asked.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=most).contains(n))
                        .ok_or_else(|| format!("`limit` must be a number from 1 to {most}."))?;
                }
                "after" => asked.after = Some(value.into_owned()),
                "before" => asked.before = Some(value.into_owned()),
                _ => asked.rest.push((name.into_owned(), value.into_owned())),
            }
        }
        Ok(asked)
    }

    /// The cursors, which must be the caller's own objects of the list's
    /// kind.
    pub fn cursors(&self, kind: ObjectKind) -> Vec<Ref> {
        [&self.after, &self.before]
            .into_iter()
            .flatten()
            .map(|id| Ref {
                kind,
                id: id.clone(),
            })
            .collect()
    }

    /// The query of the upstream page after `cursor` (the client's own
    /// cursor first, then the last entry of the page before), as large as
    /// the list allows.
    pub fn upstream_query(&self, kind: ObjectKind, cursor: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.rest {
            q.append_pair(name, value);
        }
        let size = if self.before.is_some() {
            self.limit
        } else {
            limits(kind).0
        };
        q.append_pair("limit", &size.to_string());
        if let Some(before) = &self.before {
            q.append_pair("before", before);
        } else if let Some(after) = cursor {
            q.append_pair("after", after);
        }
        q.finish()
    }
}

/// One upstream page: its entries and whether the upstream has more.
pub struct Page {
    pub data: Vec<Value>,
    pub has_more: bool,
}

impl Page {
    pub fn parse(body: &[u8]) -> Option<Page> {
        let mut v: Value = serde_json::from_slice(body).ok()?;
        let data = match v.get_mut("data")?.take() {
            Value::Array(d) => d,
            _ => return None,
        };
        Some(Page {
            has_more: v["has_more"].as_bool().unwrap_or(false),
            data,
        })
    }

    /// Where the next upstream page begins.
    pub fn last_id(&self) -> Option<&str> {
        self.data.last().and_then(|e| e["id"].as_str())
    }
}

/// The caller's page, gathered from upstream pages.
pub struct Gathered {
    own: HashSet<String>,
    limit: usize,
    entries: Vec<Value>,
    /// The upstream had more when the walk stopped.
    upstream_more: bool,
}

impl Gathered {
    pub fn new(own: HashSet<String>, limit: usize) -> Gathered {
        Gathered {
            own,
            limit,
            entries: Vec::new(),
            upstream_more: false,
        }
    }

    /// Takes an upstream page's own entries; whether another page is
    /// needed (and there is one).
    pub fn take(&mut self, page: Page) -> bool {
        self.upstream_more = page.has_more;
        self.entries.extend(
            page.data
                .into_iter()
                .filter(|e| e["id"].as_str().is_some_and(|id| self.own.contains(id))),
        );
        self.entries.len() <= self.limit && page.has_more
    }

    /// The page: at most `limit` entries; `has_more` when more of the
    /// caller's were found or the upstream has more to look at.
    pub fn page(mut self) -> Value {
        let more = self.entries.len() > self.limit || self.upstream_more;
        self.entries.truncate(self.limit);
        let id = |e: Option<&Value>| e.map_or(Value::Null, |e| e["id"].clone());
        let (first, last) = (id(self.entries.first()), id(self.entries.last()));
        // With none of the caller's found, there is no cursor to go on from.
        let more = more && !self.entries.is_empty();
        json!({
            "object": "list",
            "data": self.entries,
            "first_id": first,
            "last_id": last,
            "has_more": more,
        })
    }

    /// An empty page, for a caller who owns none of the kind.
    pub fn empty() -> Value {
        json!({"object": "list", "data": [], "first_id": null, "last_id": null, "has_more": false})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(ids: &[&str], has_more: bool) -> Page {
        Page {
            data: ids.iter().map(|id| json!({"id": id})).collect(),
            has_more,
        }
    }

    #[test]
    fn queries_are_read_as_upstreams_read_them() {
        let a = Asked::parse(ObjectKind::Files, "limit=1&after=file%2D3&purpose=batch").unwrap();
        assert_eq!(
            (a.limit, a.after.as_deref(), a.rest.clone()),
            (1, Some("file-3"), vec![("purpose".into(), "batch".into())])
        );
        assert_eq!(
            a.upstream_query(ObjectKind::Files, Some("file-9")),
            "purpose=batch&limit=10000&after=file-9"
        );
        assert_eq!(
            Asked::parse(ObjectKind::VectorStores, "").unwrap().limit,
            20
        );
        assert!(Asked::parse(ObjectKind::Files, "after=a&after=b").is_err());
        assert!(Asked::parse(ObjectKind::VectorStores, "limit=101").is_err());
        assert_eq!(
            Asked::parse(ObjectKind::Files, "before=file-1")
                .unwrap()
                .cursors(ObjectKind::Files),
            [Ref {
                kind: ObjectKind::Files,
                id: "file-1".into()
            }]
        );
    }

    /// Only the caller's entries, with cursors of their own; another
    /// user's id never shows, not even as `first_id` or `last_id`.
    #[test]
    fn pages_are_rebuilt_from_the_callers_own() {
        let own: HashSet<String> = ["a1", "a2", "a3"].map(String::from).into();
        let mut g = Gathered::new(own.clone(), 2);
        assert!(g.take(page(&["b1", "a1", "b2"], true)), "more needed");
        assert!(!g.take(page(&["a2", "b3", "a3"], true)), "enough");
        let v = g.page();
        assert_eq!(v["data"], json!([{"id": "a1"}, {"id": "a2"}]));
        assert_eq!(
            (v["first_id"].clone(), v["last_id"].clone()),
            (json!("a1"), json!("a2"))
        );
        assert_eq!(v["has_more"], true);
        // The last page.
        let mut g = Gathered::new(own.clone(), 2);
        assert!(!g.take(page(&["a3", "b4"], false)));
        let v = g.page();
        assert_eq!(
            (v["last_id"].clone(), v["has_more"].clone()),
            (json!("a3"), json!(false))
        );
        // None of the caller's on the pages looked at.
        let mut g = Gathered::new(own, 2);
        g.take(page(&["b5"], true));
        let v = g.page();
        assert_eq!(
            (v["data"].clone(), v["has_more"].clone()),
            (json!([]), json!(false))
        );
        assert_eq!(v["last_id"], Value::Null);
    }
}
