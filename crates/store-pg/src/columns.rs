//! [`Columns`] over PostgreSQL rows: the engine's shared row mapping reads through it.
//! Timestamp columns are selected as text with [`ts_text!`](crate::time::ts_text).

use crate::error::from_sqlx;
use engine::store::StoreError;
use engine::store::rows::Columns;
use sqlx::Row as _;
use sqlx::postgres::PgRow;

/// One PostgreSQL row, read by column name.
pub(crate) struct Row<'a>(pub(crate) &'a PgRow);

impl Columns for Row<'_> {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.0.try_get(column).map_err(from_sqlx)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.0.try_get(column).map_err(from_sqlx)
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.0.try_get(column).map_err(from_sqlx)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.0.try_get(column).map_err(from_sqlx)
    }

    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        self.0.try_get(column).map_err(from_sqlx)
    }
}

/// Maps every row with `map`.
pub(crate) fn all<'a, T>(
    rows: &'a [PgRow],
    map: impl Fn(&Row<'a>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(|row| map(&Row(row))).collect()
}

/// `LIMIT` for a limit where 0 means none (`LIMIT NULL`).
pub(crate) fn limit(limit: u32) -> Option<i64> {
    (limit > 0).then_some(i64::from(limit))
}
