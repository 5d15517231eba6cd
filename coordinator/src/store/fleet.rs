//! The fleet's trust state: enrolled agents (the registry every handshake
//! and every stream is checked against) and one-time join tokens.
//!
//! Tokens are stored by the SHA-256 of their secret, never the secret; a
//! token is redeemed with a compare-and-swap, so two agents racing with one
//! token cannot both enroll.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode_json, encode_json};

const KEY_LAST_AGENT: &[u8] = b"last_agent_id";

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// `a-1`, `a-2`, ...: in its certificate, never reused.
    pub id: String,
    pub name: String,
    /// From its join token: an agent cannot choose its region.
    pub region: String,
    pub enrolled_at: SystemTime,
    /// The newest certificate issued to it.
    pub cert_serial: String,
    pub cert_not_after: SystemTime,
    pub revoked: Option<Revocation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub at: SystemTime,
    pub reason: String,
}

/// A join token, by the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub region: String,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    /// Set when an agent enrolled with it: (when, which agent).
    pub used: Option<(SystemTime, String)>,
}

/// Why a join token does not let an agent in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("unknown join token (not issued by this coordinator)")]
    Unknown,
    #[error("join token already used (by agent {agent}); ask for a new one with `vantage fleet token`")]
    Used { agent: String },
    #[error("join token expired {ago} ago; ask for a new one with `vantage fleet token`")]
    Expired { ago: String },
}

impl Store {
    pub fn next_agent_id(&self) -> Result<String, StoreError> {
        Ok(format!("a-{}", self.next_counter(KEY_LAST_AGENT)?))
    }

    pub fn put_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        self.agents.insert(agent.id.as_bytes(), encode_json(agent))?;
        Ok(())
    }

    pub fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StoreError> {
        self.agents.get(id.as_bytes())?.map(|v| decode_json(&v, "agent")).transpose()
    }

    /// Every enrolled agent, revoked ones included, in id order.
    pub fn enrolled_agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.agents.iter().map(|kv| decode_json(&kv?.1, "agent")).collect()
    }

    pub fn put_token(&self, secret_hash: &[u8; 32], token: &TokenRecord) -> Result<(), StoreError> {
        self.tokens.insert(secret_hash, encode_json(token))?;
        Ok(())
    }

    /// Marks a token used by `agent` if it is valid at `now`; the record as
    /// it was, or why it cannot be used.
    pub fn redeem_token(
        &self,
        secret_hash: &[u8; 32],
        agent: &str,
        now: SystemTime,
    ) -> Result<Result<TokenRecord, TokenRefusal>, StoreError> {
        let Some(old) = self.tokens.get(secret_hash)? else { return Ok(Err(TokenRefusal::Unknown)) };
        let record: TokenRecord = decode_json(&old, "join token")?;
        if let Some((_, agent)) = &record.used {
            return Ok(Err(TokenRefusal::Used { agent: agent.clone() }));
        }
        if let Ok(ago) = now.duration_since(record.expires_at) {
            let ago = humantime::format_duration(std::time::Duration::from_secs(ago.as_secs())).to_string();
            return Ok(Err(TokenRefusal::Expired { ago }));
        }
        let used = TokenRecord { used: Some((now, agent.to_string())), ..record.clone() };
        match self.tokens.compare_and_swap(secret_hash, Some(old), Some(encode_json(&used)))? {
            Ok(()) => Ok(Ok(record)),
            // Someone redeemed it between our read and our write.
            Err(_) => Ok(Err(TokenRefusal::Used { agent: "another agent".into() })),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_token_is_redeemed_once_and_not_after_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = SystemTime::now();
        let token = TokenRecord {
            region: "eu-west".into(),
            created_at: now,
            expires_at: now + Duration::from_secs(3600),
            used: None,
        };
        store.put_token(&[1; 32], &token).unwrap();
        store.put_token(&[2; 32], &token).unwrap();
        assert_eq!(store.redeem_token(&[1; 32], "a-1", now).unwrap(), Ok(token.clone()));
        assert_eq!(store.redeem_token(&[1; 32], "a-2", now).unwrap(), Err(TokenRefusal::Used { agent: "a-1".into() }));
        assert_eq!(store.redeem_token(&[3; 32], "a-2", now).unwrap(), Err(TokenRefusal::Unknown));
        let later = now + Duration::from_secs(3601);
        assert!(matches!(store.redeem_token(&[2; 32], "a-2", later).unwrap(), Err(TokenRefusal::Expired { .. })));
        assert_eq!(store.next_agent_id().unwrap(), "a-1");
        assert_eq!(store.next_agent_id().unwrap(), "a-2");
    }
}
