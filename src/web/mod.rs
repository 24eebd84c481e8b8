//! The built-in web app at `/`: chat, the caller's account and the admin
//! console, as static files embedded in the binary (no CDN, nothing fetched
//! at run time). The page is one more client of chatgate's own API.
//!
//! Every asset is served under `/assets/<hash>/`, where the hash covers all
//! of them: URLs change whenever any file does, so they are cached for a
//! year, and the relative imports between modules keep working. Only the
//! page itself (`/`) is revalidated.

use crate::config::WebConfig;
use actix_web::http::header;
use actix_web::{middleware, web, HttpResponse};
use sha2::{Digest, Sha256};

/// A file of the app.
struct Asset {
    name: &'static str,
    mime: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $mime:expr) => {
        Asset {
            name: $name,
            mime: $mime,
            bytes: include_bytes!(concat!("../../web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

static ASSETS: &[Asset] = &[
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("chat.js", JS),
    asset!("account.js", JS),
    asset!("admin.js", JS),
    asset!("audit.js", JS),
    asset!("dom.js", JS),
    asset!("forms.js", JS),
    asset!("keys.js", JS),
    asset!("overview.js", JS),
    asset!("teams.js", JS),
    asset!("app.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("vendor/marked.esm.js", JS),
    asset!("vendor/purify.es.mjs", JS),
    asset!("vendor/uPlot.esm.js", JS),
    asset!("vendor/uPlot.min.css", CSS),
    asset!("vendor/highlight.min.js", JS),
    asset!("vendor/highlight.min.css", CSS),
];

const INDEX: &str = include_str!("../../web/index.html");

/// No inline script or style, nothing from another origin, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page and the assets' prefix, made once at start.
pub struct WebApp {
    index: String,
    prefix: String,
}

impl WebApp {
    pub fn new(config: &WebConfig) -> WebApp {
        let mut hash = Sha256::new();
        for a in ASSETS {
            hash.update(a.name.as_bytes());
            hash.update(a.bytes);
        }
        let prefix = format!("/assets/{}", &hex::encode(hash.finalize())[..12]);
        let help = config.help_link.as_deref().map(escape).unwrap_or_default();
        let index = INDEX
            .replace("{{ASSETS}}", &prefix)
            .replace("{{HELP_LINK}}", &help);
        WebApp { index, prefix }
    }

    /// Routes `/` and the assets (made in every worker, of one `WebApp`).
    pub fn configure(app: &std::sync::Arc<WebApp>, cfg: &mut web::ServiceConfig) {
        let prefix = app.prefix.clone();
        let app = web::Data::from(app.clone());
        cfg.service(
            web::resource("/")
                .app_data(app)
                .wrap(middleware::Compress::default())
                .route(web::get().to(index)),
        )
        // Browsers and tools ask for it at the root whatever the page says.
        .route("/favicon.ico", web::get().to(favicon))
        .service(
            web::resource(format!("{prefix}/{{name:.*}}"))
                .wrap(middleware::Compress::default())
                .route(web::get().to(asset)),
        );
    }
}

/// For an HTML attribute value.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn secured(mut res: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    res.insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    res
}

async fn index(app: web::Data<WebApp>) -> HttpResponse {
    secured(HttpResponse::Ok())
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(app.index.clone())
}

/// The icon at its usual address: not content-addressed, so cached for a
/// day rather than for ever.
async fn favicon() -> HttpResponse {
    secured(HttpResponse::Ok())
        .insert_header((header::CONTENT_TYPE, SVG))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(&include_bytes!("../../web/favicon.svg")[..])
}

async fn asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|a| a.name == name.as_str()) {
        Some(a) => secured(HttpResponse::Ok())
            .insert_header((header::CONTENT_TYPE, a.mime))
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(a.bytes),
        None => secured(HttpResponse::NotFound())
            .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("no such file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_hashed_assets_and_escapes_the_help_link() {
        let app = WebApp::new(&WebConfig {
            enabled: true,
            help_link: Some("https://x/?a=1&b=\"2\"".into()),
            ..WebConfig::default()
        });
        assert!(app.prefix.starts_with("/assets/") && app.prefix.len() == 20);
        assert!(app.index.contains(&format!("{}/app.js", app.prefix)));
        assert!(app.index.contains("https://x/?a=1&amp;b=&quot;2&quot;"));
        assert!(!app.index.contains("{{"));
    }

    #[test]
    fn every_asset_has_a_media_type_of_its_kind() {
        for a in ASSETS {
            let want = match a.name.rsplit('.').next() {
                Some("css") => CSS,
                Some("svg") => SVG,
                _ => JS,
            };
            assert_eq!(a.mime, want, "{}", a.name);
        }
    }
}
