//! HS256 access tokens, short-lived, each naming its server-side session (`model::session`);
//! and how long sessions last.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Role;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    pub company_id: Uuid,
    pub role: Role,
    /// The server-side session the token belongs to (see `model::session`). Required: a token
    /// naming none is no token of ours.
    pub sid: Uuid,
    pub exp: u64,
    pub iat: u64,
}

/// Seconds of clock difference tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 5;

/// How long a session lives: at most `absolute` from its login however often it is refreshed,
/// and no longer than `idle` after its last refresh (`SESSION_TTL`, `SESSION_IDLE_TTL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLifetimes {
    pub absolute: Duration,
    pub idle: Duration,
}

impl Default for SessionLifetimes {
    fn default() -> Self {
        Self {
            absolute: crate::model::session::DEFAULT_TTL,
            idle: crate::model::session::DEFAULT_IDLE_TTL,
        }
    }
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    sessions: SessionLifetimes,
}

impl JwtKeys {
    pub fn new(secret: &str, ttl: Duration) -> Self {
        // Only HS256 is accepted: a token naming `none` or any other algorithm is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        // A token that names a start (`nbf`) is not valid before it.
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        // `sid` is required too: `Claims` has no default for it.
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            ttl,
            sessions: SessionLifetimes::default(),
        }
    }

    /// The same keys, opening sessions of these lifetimes.
    pub fn with_sessions(mut self, sessions: SessionLifetimes) -> Self {
        self.sessions = sessions;
        self
    }

    /// How long an access token lives (`JWT_TTL`).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How long the sessions behind the tokens live.
    pub fn sessions(&self) -> SessionLifetimes {
        self.sessions
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        company_id: Uuid,
        role: Role,
        session_id: Uuid,
    ) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let claims = Claims {
            sub: user_id,
            company_id,
            role,
            sid: session_id,
            iat: now,
            exp: now + self.ttl.as_secs(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a genuine, unexpired, already valid token; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        // jsonwebtoken leaves `iat` alone: a token "issued" in the future is not one we issued.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        (claims.iat <= now + LEEWAY_SECS).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "an-only-for-tests-secret-of-32-chars!";

    #[test]
    fn round_trip() {
        let keys = JwtKeys::new(SECRET, Duration::from_secs(60));
        let (user, company) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys
            .issue(user, company, Role::Admin, Uuid::new_v4())
            .unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(
            (claims.sub, claims.company_id, claims.role),
            (user, company, Role::Admin)
        );
        assert_eq!(claims.exp - claims.iat, 60);
    }

    #[test]
    fn refuses_other_keys_algorithms_and_garbage() {
        let keys = JwtKeys::new(SECRET, Duration::from_secs(60));
        let other = JwtKeys::new(
            "another-secret-another-secret-12345",
            Duration::from_secs(60),
        );
        let token = other
            .issue(
                Uuid::new_v4(),
                Uuid::new_v4(),
                Role::Superadmin,
                Uuid::new_v4(),
            )
            .unwrap();
        assert!(keys.verify(&token).is_none());
        assert!(keys.verify("not.a.token").is_none());
        assert!(keys.verify("").is_none());

        // alg: none, with a superadmin payload and no signature.
        let b64 = |s: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
        };
        let payload = format!(
            r#"{{"sub":"{}","company_id":"{}","role":"superadmin","exp":9999999999,"iat":0}}"#,
            Uuid::new_v4(),
            Uuid::new_v4()
        );
        let unsigned = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&payload)
        );
        assert!(keys.verify(&unsigned).is_none());
    }

    fn signed(keys: &JwtKeys, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::default(), claims, &keys.encoding).unwrap()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn refuses_tokens_not_valid_yet() {
        let keys = JwtKeys::new(SECRET, Duration::from_secs(60));
        let now = now();
        let claims = |nbf: u64| {
            serde_json::json!({"sub": Uuid::new_v4(), "company_id": Uuid::new_v4(),
                               "sid": Uuid::new_v4(), "role": "admin", "iat": now,
                               "exp": now + 3600, "nbf": nbf})
        };
        assert!(keys.verify(&signed(&keys, &claims(now - 60))).is_some());
        assert!(keys.verify(&signed(&keys, &claims(now))).is_some());
        // Within the leeway, a clock a little ahead of ours is forgiven.
        assert!(keys.verify(&signed(&keys, &claims(now + 2))).is_some());
        assert!(keys.verify(&signed(&keys, &claims(now + 60))).is_none());
        assert!(
            keys.verify(&signed(&keys, &claims(now + 365 * 86_400)))
                .is_none()
        );
        // A malformed nbf is no excuse.
        let mut garbled = claims(now);
        garbled["nbf"] = serde_json::json!("yesterday");
        assert!(keys.verify(&signed(&keys, &garbled)).is_none());
    }

    #[test]
    fn refuses_tokens_issued_in_the_future() {
        let keys = JwtKeys::new(SECRET, Duration::from_secs(60));
        let now = now();
        let claims = |iat: u64| {
            serde_json::json!({"sub": Uuid::new_v4(), "company_id": Uuid::new_v4(),
                               "sid": Uuid::new_v4(), "role": "admin", "iat": iat,
                               "exp": iat + 3600})
        };
        assert!(keys.verify(&signed(&keys, &claims(now - 600))).is_some());
        assert!(
            keys.verify(&signed(&keys, &claims(now + LEEWAY_SECS - 1)))
                .is_some()
        );
        assert!(keys.verify(&signed(&keys, &claims(now + 60))).is_none());
        assert!(
            keys.verify(&signed(&keys, &claims(now + 365 * 86_400)))
                .is_none()
        );
    }

    #[test]
    fn refuses_tokens_naming_no_session() {
        let keys = JwtKeys::new(SECRET, Duration::from_secs(60));
        let now = now();
        let mut claims = serde_json::json!({"sub": Uuid::new_v4(), "company_id": Uuid::new_v4(),
                                            "sid": Uuid::new_v4(), "role": "admin", "iat": now,
                                            "exp": now + 3600});
        assert!(keys.verify(&signed(&keys, &claims)).is_some());
        for sid in [serde_json::Value::Null, serde_json::json!("not-a-uuid")] {
            claims["sid"] = sid;
            assert!(keys.verify(&signed(&keys, &claims)).is_none());
        }
        claims.as_object_mut().unwrap().remove("sid");
        assert!(keys.verify(&signed(&keys, &claims)).is_none());
    }

    #[test]
    fn refuses_expired_tokens() {
        let keys = JwtKeys::new(SECRET, Duration::from_secs(60));
        let claims = Claims {
            sub: Uuid::new_v4(),
            company_id: Uuid::new_v4(),
            role: Role::Admin,
            sid: Uuid::new_v4(),
            iat: 1_000,
            exp: 2_000,
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &keys.encoding).unwrap();
        assert!(keys.verify(&token).is_none());
    }
}
