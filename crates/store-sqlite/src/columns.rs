//! [`Columns`] over SQLite rows: the engine's shared row mapping reads through it.

use crate::error::map_sqlx;
use engine::store::StoreError;
use engine::store::rows::Columns;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

/// One SQLite row, read by column name.
pub(crate) struct Row<'a>(pub(crate) &'a SqliteRow);

impl Columns for Row<'_> {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.0.try_get(column).map_err(map_sqlx)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.0.try_get(column).map_err(map_sqlx)
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.0.try_get(column).map_err(map_sqlx)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.0.try_get(column).map_err(map_sqlx)
    }

    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        self.0.try_get(column).map_err(map_sqlx)
    }
}

/// Maps every row with `map`.
pub(crate) fn all<'a, T>(
    rows: &'a [SqliteRow],
    map: impl Fn(&Row<'a>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(|row| map(&Row(row))).collect()
}

/// `LIMIT` for a limit where 0 means none (a negative LIMIT is none in SQLite).
pub(crate) fn limit(limit: u32) -> i64 {
    if limit == 0 { -1 } else { i64::from(limit) }
}
