//! Helpers shared by the row readers and writers of every table.

use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::StoreError;
use crate::meta::StoreResult;
use crate::model::{Cursor, UnknownValue};

/// Booleans are stored as 0/1 `BIGINT`s (portable between the engines).
pub(super) fn b(v: bool) -> i64 {
    i64::from(v)
}

/// A 0/1 column.
pub(super) fn flag(row: &AnyRow, col: &str) -> StoreResult<bool> {
    Ok(row.try_get::<i64, _>(col)? != 0)
}

/// A nullable text column.
pub(super) fn opt_str(row: &AnyRow, col: &str) -> StoreResult<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

/// A text column that must hold one spelling of `T`: anything else is
/// [`StoreError::Corrupt`], naming the table and column but not the stored value.
pub(super) fn spelled<T>(row: &AnyRow, table: &str, col: &str) -> StoreResult<T>
where
    T: FromStr<Err = UnknownValue>,
{
    let text: String = row.try_get(col)?;
    text.parse()
        .map_err(|e: UnknownValue| corrupt(table, col, e.what))
}

/// A text column that must hold one spelling of `T`, kept as the text itself (the records still
/// carry these columns as `String`).
pub(super) fn checked<T>(row: &AnyRow, table: &str, col: &str) -> StoreResult<String>
where
    T: FromStr<Err = UnknownValue>,
{
    let text: String = row.try_get(col)?;
    match text.parse::<T>() {
        Ok(_) => Ok(text),
        Err(e) => Err(corrupt(table, col, e.what)),
    }
}

fn corrupt(table: &str, col: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "{table}.{col} holds a value that is not a known {what} (written by a newer version, or \
         edited by hand)"
    ))
}

/// True when `e` is a unique-constraint violation, on either engine.
pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db
                    .code()
                    .is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
        }
        _ => false,
    }
}

/// Ends a newest-first keyset page query: with a cursor, only rows strictly before its
/// `(date_created, sid)`, bound at `$cursor_at` and `$cursor_at + 1`; then newest first, at most
/// `$2` rows.
pub(super) fn newest_first_page(sql: &mut String, after: Option<&Cursor>, cursor_at: usize) {
    if after.is_some() {
        let (a, b) = (cursor_at, cursor_at + 1);
        sql.push_str(&format!(
            " AND (date_created < ${a} OR (date_created = ${a} AND sid < ${b}))"
        ));
    }
    sql.push_str(" ORDER BY date_created DESC, sid DESC LIMIT $2");
}
