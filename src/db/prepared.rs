//! [`KeepPrepared`]: a statement kept prepared on its connection although diesel would
//! prepare it anew on every call.
//!
//! diesel keeps a prepared statement per connection only for statements it can prove have
//! one text for all values: every `UPDATE`, every `INSERT` of an `Insertable` struct (a
//! `None` field may become `DEFAULT`) and all raw SQL are prepared, planned and thrown away
//! on each call, which on the booking path was most of PostgreSQL's work. The cache is keyed
//! by the statement's text and bind types, so a statement whose text varies with its values
//! only takes one entry per text; wrap only statements with a small, fixed set of texts
//! (never an `IN` list of variable length).

use diesel::{
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    result::QueryResult,
};

/// Runs `Q` as a prepared statement kept on the connection (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct KeepPrepared<Q>(pub Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for KeepPrepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for KeepPrepared<Q> {
    type QueryId = ();
    // Keyed by text: see the module doc.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for KeepPrepared<Q> {
    type SqlType = Q::SqlType;
}
