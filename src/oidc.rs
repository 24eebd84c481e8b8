//! OpenID Connect, the protocol (SPEC §9): the provider's discovery
//! document and keys, the authorization request with PKCE, the code
//! exchange, and the ID token's checks. What a sign-in means for chatgate
//! (users, sessions) is `signin`'s.
//!
//! The JWT checks are `jsonwebtoken`'s (signature, `exp`, `iss`, `aud`);
//! the rest is the few HTTP calls the flow needs, made with awc like
//! every other outgoing call.

use crate::config::OidcConfig;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a discovery document is trusted before it is read again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
const TIMEOUT: Duration = Duration::from_secs(10);

/// What a failed step says (shown to the person signing in, so never a
/// token or a secret).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider answered unexpectedly: {0}")]
    Protocol(String),
    #[error("the identity provider's ID token was refused: {0}")]
    BadToken(String),
}

/// The endpoints of `{issuer}/.well-known/openid-configuration`.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
}

/// The provider's document and keys, read when first needed; the keys
/// again when a token names one they lack (the issuer rotated them).
#[derive(Default)]
pub struct ProviderCache {
    discovery: Mutex<Option<(String, Instant, Arc<Discovery>)>>,
    keys: Mutex<Option<(String, Arc<JwkSet>)>>,
}

fn client() -> awc::Client {
    awc::Client::builder().timeout(TIMEOUT).finish()
}

async fn get_json<T: serde::de::DeserializeOwned>(
    url: &str,
    bearer: Option<&str>,
) -> Result<T, OidcError> {
    let mut req = client()
        .get(url)
        .insert_header(("Accept", "application/json"));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let mut res = req
        .send()
        .await
        .map_err(|e| OidcError::Unreachable(format!("{url}: {e}")))?;
    if !res.status().is_success() {
        return Err(OidcError::Protocol(format!(
            "{url} answered {}",
            res.status()
        )));
    }
    let body = res
        .body()
        .limit(1 << 20)
        .await
        .map_err(|e| OidcError::Unreachable(format!("{url}: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| OidcError::Protocol(format!("{url}: {e}")))
}

impl ProviderCache {
    pub async fn discovery(&self, issuer: &str) -> Result<Arc<Discovery>, OidcError> {
        if let Some((i, at, d)) = &*self.discovery.lock().expect("not poisoned") {
            if i == issuer && at.elapsed() < DISCOVERY_TTL {
                return Ok(d.clone());
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let d: Discovery = get_json(&url, None).await?;
        // The document must be the issuer's own (OpenID Connect Discovery §4.3).
        if d.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(OidcError::Protocol(format!(
                "the discovery document names the issuer `{}`, not `{issuer}`",
                d.issuer
            )));
        }
        let d = Arc::new(d);
        *self.discovery.lock().expect("not poisoned") =
            Some((issuer.to_owned(), Instant::now(), d.clone()));
        Ok(d)
    }

    async fn keys(&self, jwks_uri: &str, fresh: bool) -> Result<Arc<JwkSet>, OidcError> {
        if !fresh {
            if let Some((u, k)) = &*self.keys.lock().expect("not poisoned") {
                if u == jwks_uri {
                    return Ok(k.clone());
                }
            }
        }
        let set: JwkSet = get_json(jwks_uri, None).await?;
        let set = Arc::new(set);
        *self.keys.lock().expect("not poisoned") = Some((jwks_uri.to_owned(), set.clone()));
        Ok(set)
    }

    /// The ID token's claims, once its signature (by the issuer's keys),
    /// issuer, audience, expiry and nonce check out.
    pub async fn verify(
        &self,
        d: &Discovery,
        config: &OidcConfig,
        id_token: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| OidcError::BadToken(e.to_string()))?;
        let mut keys = self.keys(&d.jwks_uri, false).await?;
        if find_key(&keys, header.kid.as_deref(), header.alg).is_none() {
            keys = self.keys(&d.jwks_uri, true).await?;
        }
        let key = find_key(&keys, header.kid.as_deref(), header.alg).ok_or_else(|| {
            OidcError::BadToken("it is signed with a key the issuer does not publish".into())
        })?;
        check(
            id_token,
            &key,
            header.alg,
            &d.issuer,
            &config.client_id,
            nonce,
        )
    }
}

/// Asymmetric algorithms only: a token "signed" with a shared secret or
/// with none proves nothing about the issuer.
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn find_key(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    if !ALGORITHMS.contains(&alg) {
        return None;
    }
    set.keys
        .iter()
        .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
        .find_map(|k| DecodingKey::from_jwk(k).ok())
}

/// The checks on a token and the key it names.
fn check(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    issuer: &str,
    client_id: &str,
    nonce: &str,
) -> Result<Map<String, Value>, OidcError> {
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 60;
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &v)
        .map_err(|e| OidcError::BadToken(e.to_string()))?;
    let claims = data.claims;
    if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
        return Err(OidcError::BadToken(
            "its nonce is not this sign-in's".into(),
        ));
    }
    Ok(claims)
}

/// A random value for `state`, `nonce` and the PKCE verifier (RFC 7636:
/// 43 to 128 characters of its alphabet).
pub fn random() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 43)
}

/// The PKCE challenge of `verifier` (S256).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Where the browser goes to sign in.
pub fn authorize_url(
    d: &Discovery,
    config: &OidcConfig,
    redirect_uri: &str,
    state: &str,
    nonce: &str,
    verifier: &str,
) -> Result<String, OidcError> {
    let mut url = url::Url::parse(&d.authorization_endpoint)
        .map_err(|e| OidcError::Protocol(format!("authorization_endpoint: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &config.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &config.scopes.join(" "))
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &challenge(verifier))
        .append_pair("code_challenge_method", "S256");
    Ok(url.into())
}

#[derive(Deserialize)]
pub struct Tokens {
    pub id_token: String,
    #[serde(default)]
    pub access_token: Option<String>,
}

/// Trades the code for tokens (client_secret_basic, as RFC 6749 §2.3.1
/// spells the credentials: each form-encoded first).
pub async fn exchange(
    d: &Discovery,
    config: &OidcConfig,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Tokens, OidcError> {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let mut res = client()
        .post(&d.token_endpoint)
        .basic_auth(enc(&config.client_id), enc(&config.client_secret))
        .insert_header(("Accept", "application/json"))
        .send_form(&form)
        .await
        .map_err(|e| OidcError::Unreachable(format!("{}: {e}", d.token_endpoint)))?;
    let body = res
        .body()
        .limit(1 << 20)
        .await
        .map_err(|e| OidcError::Unreachable(e.to_string()))?;
    if !res.status().is_success() {
        // The error's code and description, never the request's secrets.
        let why: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let said = ["error", "error_description"]
            .iter()
            .filter_map(|k| why.get(*k).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(": ");
        return Err(OidcError::Protocol(format!(
            "the token endpoint answered {} {said}",
            res.status()
        )));
    }
    serde_json::from_slice(&body).map_err(|e| OidcError::Protocol(format!("token response: {e}")))
}

/// The userinfo claims (where providers put what the ID token leaves
/// out, such as `email` or `groups`); none without the endpoint.
pub async fn userinfo(d: &Discovery, access_token: &str) -> Result<Map<String, Value>, OidcError> {
    match &d.userinfo_endpoint {
        Some(url) => get_json(url, Some(access_token)).await,
        None => Ok(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let v = random();
        assert_eq!(v.len(), 43);
        assert_ne!(v, random());
    }

    /// A P-256 key pair: the token signer, and the issuer's key as a JWKS
    /// publishes it.
    fn signer() -> (jsonwebtoken::EncodingKey, DecodingKey) {
        let pair = rcgen::KeyPair::generate().unwrap();
        let raw = pair.public_key_raw();
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&raw[1..33]),
            URL_SAFE_NO_PAD.encode(&raw[33..]),
        );
        (
            jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der()),
            DecodingKey::from_ec_components(&x, &y).unwrap(),
        )
    }

    fn token(key: &jsonwebtoken::EncodingKey, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::ES256), &claims, key).unwrap()
    }

    #[test]
    fn an_id_token_passes_only_with_its_issuers_signature_audience_expiry_and_nonce() {
        let (sign, verify) = signer();
        let (other, _) = signer();
        let now = chrono::Utc::now().timestamp();
        let good = serde_json::json!({"iss": "https://id.example", "aud": "gate", "sub": "u1",
            "exp": now + 300, "iat": now, "nonce": "n1", "email": "a@example"});
        let with = |k: &str, v: serde_json::Value| {
            let mut c = good.clone();
            c[k] = v;
            c
        };
        let run = |key: &jsonwebtoken::EncodingKey, claims: serde_json::Value| {
            check(
                &token(key, claims),
                &verify,
                Algorithm::ES256,
                "https://id.example",
                "gate",
                "n1",
            )
        };
        let claims = run(&sign, good.clone()).unwrap();
        assert_eq!(claims["email"], "a@example");
        for (why, outcome) in [
            ("another key's signature", run(&other, good.clone())),
            (
                "another audience",
                run(&sign, with("aud", "someone-else".into())),
            ),
            (
                "another issuer",
                run(&sign, with("iss", "https://evil.example".into())),
            ),
            ("expired", run(&sign, with("exp", (now - 3600).into()))),
            (
                "another sign-in's nonce",
                run(&sign, with("nonce", "n2".into())),
            ),
            (
                "no nonce",
                run(&sign, {
                    let mut c = good.clone();
                    c.as_object_mut().unwrap().remove("nonce");
                    c
                }),
            ),
        ] {
            assert!(
                matches!(outcome, Err(OidcError::BadToken(_))),
                "{why} passed"
            );
        }
        let mut tampered = token(&sign, good.clone());
        tampered.insert(tampered.find('.').unwrap() + 2, 'x');
        assert!(check(
            &tampered,
            &verify,
            Algorithm::ES256,
            "https://id.example",
            "gate",
            "n1"
        )
        .is_err());
    }

    #[test]
    fn shared_secret_and_unsigned_tokens_find_no_key() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "a"}
        ]}))
        .unwrap();
        assert!(find_key(&set, Some("a"), Algorithm::HS256).is_none());
    }
}
