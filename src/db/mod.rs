//! PostgreSQL: the connection pool, creating the database, and the embedded migrations.

pub mod models;
pub mod prepared;
pub mod schema;

use std::time::Duration;

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
        deadpool::{Object, Pool},
    },
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The SQL migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;

/// A setting of one transaction alone (`SET LOCAL`), given when it begins
/// ([`begin_transaction_with`]).
#[derive(Debug, Clone, Copy)]
pub enum LocalSetting {
    /// Prepared statements run with the plan made once per connection
    /// (`plan_cache_mode = force_generic_plan`) instead of being planned again on each run
    /// with their values: for statements that find rows by key, whose plan does not depend
    /// on the values, and where planning costs more than running.
    PlanOnce,
}

impl LocalSetting {
    fn sql(self) -> &'static str {
        match self {
            LocalSetting::PlanOnce => "SET LOCAL plan_cache_mode TO force_generic_plan",
        }
    }
}

/// Opens a transaction with `settings` applied to it, in one message (`BEGIN; SET LOCAL …`),
/// so the settings cost no round trip of their own. End the transaction with
/// [`end_transaction`]; a connection dropped with the transaction open is not given back to
/// the pool (deadpool's recycle finds diesel's transaction manager not idle and discards it).
pub async fn begin_transaction_with(
    conn: &mut AsyncPgConnection,
    settings: &[LocalSetting],
) -> diesel::QueryResult<()> {
    let sql = std::iter::once("BEGIN")
        .chain(settings.iter().map(|s| s.sql()))
        .collect::<Vec<_>>()
        .join("; ");
    AnsiTransactionManager::begin_transaction_sql(conn, &sql).await
}

/// Ends a transaction opened by [`begin_transaction_with`]: commits it when `outcome` is
/// `Ok`, rolls it back otherwise (as `AsyncConnection::transaction` does, whose closure's
/// `Send` bound cannot be named outside diesel-async).
pub async fn end_transaction<T, E>(
    conn: &mut AsyncPgConnection,
    outcome: Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    match outcome {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(failed) => match AnsiTransactionManager::rollback_transaction(conn).await {
            // The transaction's own error says more than the rollback's.
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(failed),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// Builds the pool. Connections are opened lazily; a request that cannot get one within
/// the timeouts gets an error (a 503), never a hang.
pub fn build_pool(database_url: &str, size: usize) -> anyhow::Result<DbPool> {
    // `Fast` recycling skips the `SELECT 1` the default runs on every checkout (a round trip
    // per request); a connection that died meanwhile fails its first query, which the error
    // mapping answers with a 503 naming the database.
    let mut manager_config = ManagerConfig::default();
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        database_url,
        manager_config,
    );
    Ok(Pool::builder(manager)
        .max_size(size)
        // The connection used last is taken first: its prepared statements are planned
        // already (PostgreSQL plans a statement anew for its first five runs on a connection),
        // whereas taking them in turn spreads those first runs over the whole pool.
        .queue_mode(deadpool::managed::QueueMode::Lifo)
        .runtime(deadpool_runtime())
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()?)
}

fn deadpool_runtime() -> deadpool::Runtime {
    deadpool::Runtime::Tokio1
}

/// Creates the database named in `database_url` when it does not exist yet, connecting to
/// the server's `postgres` database to do so.
pub async fn create_database_if_missing(database_url: &str) -> anyhow::Result<()> {
    let (server_url, name) = split_database_url(database_url)?;
    if AsyncPgConnection::establish(database_url).await.is_ok() {
        return Ok(());
    }
    let mut conn = AsyncPgConnection::establish(&format!("{server_url}/postgres"))
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {server_url}: {e}"))?;
    let exists = pg_database::table
        .select(pg_database::datname)
        .filter(pg_database::datname.eq(&name))
        .first::<String>(&mut conn)
        .await
        .optional()?
        .is_some();
    if !exists {
        diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(&name)))
            .execute(&mut conn)
            .await?;
        tracing::info!(database = %name, "created the database");
    }
    Ok(())
}

diesel::table! {
    pg_database (datname) {
        datname -> Text,
    }
}

/// Splits `postgres://user@host:port/name?params` into the server part and the name.
fn split_database_url(url: &str) -> anyhow::Result<(String, String)> {
    let without_query = url.split('?').next().unwrap_or(url);
    let (server, name) = without_query
        .rsplit_once('/')
        .filter(|(server, name)| {
            server.contains("://") && !server.ends_with('/') && !name.is_empty()
        })
        .ok_or_else(|| anyhow::anyhow!("DATABASE_URL names no database: {url}"))?;
    Ok((server.to_owned(), name.to_owned()))
}

/// A `LIKE`/`ILIKE` pattern matching `text` anywhere, with the input's wildcards escaped.
pub fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

diesel::define_sql_function! {
    /// PostgreSQL's `translate(text, from, to)`.
    fn translate(text: diesel::sql_types::Text, from: diesel::sql_types::Text, to: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

diesel::define_sql_function! {
    /// PostgreSQL's `lower(text)`.
    #[sql_name = "lower"]
    fn lower_text(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A text column as names are compared: lower case, ё folded into е (the expression the
/// name indexes are built on).
pub fn folded<E>(text: E) -> translate<lower_text<E>, &'static str, &'static str>
where
    E: diesel::expression::AsExpression<diesel::sql_types::Text>,
{
    translate(lower_text(text), "ё", "е")
}

/// Quotes a PostgreSQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Applies pending migrations and returns the versions that ran.
pub async fn run_migrations(database_url: &str) -> anyhow::Result<Vec<String>> {
    let mut conn = AsyncPgConnection::establish(database_url).await?;
    // Several replicas may start at once: the first takes the lock and migrates, the others
    // wait and then find nothing to apply. The lock ends with the connection.
    diesel::sql_query("SELECT pg_advisory_lock(7270017)")
        .execute(&mut conn)
        .await?;
    // The migration harness is synchronous; run it on a blocking thread through the wrapper.
    tokio::task::spawn_blocking(move || {
        let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> =
            AsyncConnectionWrapper::from(conn);
        wrapper
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"))
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_split_into_server_and_name() {
        let (server, name) =
            split_database_url("postgres://postgres@127.0.0.1:5432/sovamed?sslmode=disable")
                .expect("valid");
        assert_eq!(server, "postgres://postgres@127.0.0.1:5432");
        assert_eq!(name, "sovamed");
        assert!(split_database_url("postgres://127.0.0.1:5432").is_err());
    }
}
