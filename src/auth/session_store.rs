//! Cabinet sessions in Redis, under this instance's key prefix.
//!
//! tower-sessions-redis-store 0.16 writes bare session ids as keys; `REDIS_PREFIX` promises
//! that every key carries the prefix (several instances, and the tests, share one Redis), so
//! this is the same store with the prefix added. Records expire in Redis at their own
//! expiry date, so an abandoned session leaves nothing behind.

use async_trait::async_trait;
use fred::{
    interfaces::KeysInterface,
    types::{Expiration, SetOptions},
};
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store,
};

use crate::redis::Redis;

/// A [`SessionStore`] over the shared Redis pool.
#[derive(Clone)]
pub struct RedisSessionStore {
    redis: Redis,
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore").finish_non_exhaustive()
    }
}

impl RedisSessionStore {
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    /// The Redis key of a session; public so tests can check that logout removed it.
    pub fn key_of(&self, id: &Id) -> String {
        self.redis.key(&format!("session:{id}"))
    }

    async fn write(&self, record: &Record, options: SetOptions) -> session_store::Result<bool> {
        let body =
            serde_json::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let expire = Expiration::EXAT(record.expiry_date.unix_timestamp());
        let written: Option<String> = self
            .redis
            .pool
            .set(
                self.key_of(&record.id),
                body.as_slice(),
                Some(expire),
                Some(options),
                false,
            )
            .await
            .map_err(backend)?;
        Ok(written.is_some())
    }
}

fn backend(e: fred::error::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // NX: a freshly generated id that already exists is drawn again, never reused.
        while !self.write(record, SetOptions::NX).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        // XX: a session deleted meanwhile (logout elsewhere) is not brought back.
        self.write(record, SetOptions::XX).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let body: Option<Vec<u8>> = self
            .redis
            .pool
            .get(self.key_of(id))
            .await
            .map_err(backend)?;
        body.map(|b| {
            serde_json::from_slice(&b).map_err(|e| session_store::Error::Decode(e.to_string()))
        })
        .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let _: i64 = self
            .redis
            .pool
            .del(self.key_of(id))
            .await
            .map_err(backend)?;
        Ok(())
    }
}
