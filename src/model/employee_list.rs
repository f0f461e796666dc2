//! A company's employee list: search (`q`), sort, and pages by offset (`skip`) or by cursor.
//!
//! Every variant is served by an index led by `company_id` (sql/V8__employee_list.sql), so a
//! page costs about the same at 10 employees as at 10,000:
//! - each sort walks its index (`name_key, id` or `created_at, id`, either direction);
//! - `q` goes through a trigram index of name, job title and email (pg_trgm, `ILIKE '%q%'`), by
//!   way of `employee_search()`: under row-level security PostgreSQL would not use the index for
//!   ILIKE itself (see sql/V8__employee_list.sql);
//! - a cursor continues right after the last row of the previous page (a range condition on the
//!   sort index), where `skip` has to step over every row before the page;
//! - the unfiltered total is read from `employee_counts`, kept by triggers; a filtered total
//!   counts the matches through the trigram index.
//!
//! Ties on the sort key are broken by `id`, so the order is total and a cursor never skips or
//! repeats a row, whatever is inserted or deleted meanwhile.
//!
//! The page and the total are two statements sent together: with the tenant settings and the
//! commit, one round trip (see [`crate::db::Db::read`]).

use std::{collections::HashMap, sync::LazyLock};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::employee::{Employee, employee_columns};
use crate::db::{DbError, TenantTx};

/// What the list is ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// Case-insensitive full name: `name_key`, PostgreSQL's `lower(full_name)`, in the
    /// database's collation.
    Name,
    CreatedAt,
}

/// A sort key and its direction, as the `sort` parameter spells it: `name`, `-created_at`…
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    /// Every value `sort` accepts.
    pub const ALLOWED: [&'static str; 4] = ["name", "-name", "created_at", "-created_at"];

    /// Oldest first, as the list always was.
    pub const DEFAULT: Sort = Sort {
        key: SortKey::CreatedAt,
        descending: false,
    };

    pub fn parse(value: &str) -> Option<Sort> {
        let (descending, key) = match value.strip_prefix('-') {
            Some(key) => (true, key),
            None => (false, value),
        };
        let key = match key {
            "name" => SortKey::Name,
            "created_at" => SortKey::CreatedAt,
            _ => return None,
        };
        Some(Sort { key, descending })
    }

    pub fn as_str(self) -> &'static str {
        match (self.key, self.descending) {
            (SortKey::Name, false) => "name",
            (SortKey::Name, true) => "-name",
            (SortKey::CreatedAt, false) => "created_at",
            (SortKey::CreatedAt, true) => "-created_at",
        }
    }
}

/// Where a page starts.
#[derive(Clone, Debug, PartialEq)]
pub enum Start {
    /// After skipping this many rows.
    Skip(i64),
    /// Right after the row a cursor points at.
    After(Cursor),
}

/// One request for a page of the list.
#[derive(Clone, Debug)]
pub struct ListQuery {
    pub sort: Sort,
    /// A substring of the name, job title or email, matched case-insensitively; validated and
    /// trimmed by the caller, never empty.
    pub search: Option<String>,
    pub start: Start,
    /// At most this many rows.
    pub limit: i64,
}

/// A position in the list: the sort key and id of the last row of a page, with the sort and the
/// search it belongs to (a cursor only means something in the list that made it).
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    pub sort: Sort,
    pub search: Option<String>,
    after: CursorKey,
    after_id: Uuid,
}

#[derive(Clone, Debug, PartialEq)]
enum CursorKey {
    /// `name_key` as PostgreSQL computed it (Rust's lowercase differs for some letters).
    Name(String),
    /// Microseconds, the precision of `timestamptz`, so the comparison is exact.
    CreatedAt(DateTime<Utc>),
}

/// Why a cursor was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CursorError {
    #[error("`cursor` is not a cursor this list gave out")]
    Malformed,
    #[error(
        "`cursor` belongs to another `sort` or `q`: repeat them as they were, or start again without `cursor`"
    )]
    OtherList,
}

/// Format version, so that cursors of another release are refused rather than misread.
const CURSOR_VERSION: &str = "1";
/// A cursor holds at most a name (200 characters) and `q`; anything much longer is not one.
pub const MAX_CURSOR_LENGTH: usize = 2048;

impl Cursor {
    /// Opaque to clients: base64url of `version \n sort \n id \n micros-or-empty \n has-q q \n name`.
    /// The name comes last, so that whatever it holds cannot shift the other fields.
    pub fn encode(&self) -> String {
        let (micros, name) = match &self.after {
            CursorKey::Name(name) => (String::new(), name.as_str()),
            CursorKey::CreatedAt(at) => (at.timestamp_micros().to_string(), ""),
        };
        let search = match &self.search {
            Some(q) => format!("+{q}"),
            None => "-".to_owned(),
        };
        let text = format!(
            "{CURSOR_VERSION}\n{}\n{}\n{micros}\n{search}\n{name}",
            self.sort.as_str(),
            self.after_id.simple()
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    /// The cursor in `encoded`, checked against the list it is used on.
    pub fn decode(encoded: &str, sort: Sort, search: Option<&str>) -> Result<Cursor, CursorError> {
        let cursor = Self::parse(encoded).ok_or(CursorError::Malformed)?;
        if cursor.sort != sort || cursor.search.as_deref() != search {
            return Err(CursorError::OtherList);
        }
        Ok(cursor)
    }

    fn parse(encoded: &str) -> Option<Cursor> {
        if encoded.len() > MAX_CURSOR_LENGTH {
            return None;
        }
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
        let mut fields = text.splitn(6, '\n');
        let mut next = || fields.next();
        let (version, sort, id, micros, search, name) =
            (next()?, next()?, next()?, next()?, next()?, next()?);
        if version != CURSOR_VERSION {
            return None;
        }
        let sort = Sort::parse(sort)?;
        let after_id = Uuid::try_parse(id).ok()?;
        let search = match search.split_at_checked(1)? {
            ("+", q) if !q.is_empty() => Some(q.to_owned()),
            ("-", "") => None,
            _ => return None,
        };
        let after = match sort.key {
            SortKey::Name if micros.is_empty() => CursorKey::Name(name.to_owned()),
            SortKey::CreatedAt if name.is_empty() => {
                CursorKey::CreatedAt(DateTime::from_timestamp_micros(micros.parse().ok()?)?)
            }
            _ => return None,
        };
        Some(Cursor {
            sort,
            search,
            after,
            after_id,
        })
    }

    /// The cursor pointing at `row`, a row of the page `query` asked for.
    fn at(row: &Row, query: &ListQuery) -> Result<Cursor, tokio_postgres::Error> {
        let after = match query.sort.key {
            SortKey::Name => CursorKey::Name(row.try_get("sort_name")?),
            SortKey::CreatedAt => CursorKey::CreatedAt(row.try_get("created_at")?),
        };
        Ok(Cursor {
            sort: query.sort,
            search: query.search.clone(),
            after,
            after_id: row.try_get("id")?,
        })
    }
}

/// One page of the list.
pub struct EmployeePage {
    /// The employees of the page.
    pub employees: Vec<Employee>,
    /// How many employees the whole list holds (with `q`: how many match).
    pub total: i64,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// One page of `company_id`'s employees, or `None` when there is no such company (to the
/// tenant: row-level security hides the others).
pub async fn list(
    tx: &TenantTx,
    company_id: Uuid,
    query: &ListQuery,
) -> Result<Option<EmployeePage>, DbError> {
    let pattern = query.search.as_deref().map(like_pattern);
    // One row more than asked tells whether there is a next page.
    let fetch = query.limit + 1;
    let sql = list_statement(query);
    let rows = async {
        match (&query.start, &pattern) {
            (Start::Skip(0), None) => tx.query(sql, [&company_id, &fetch]).await,
            (Start::Skip(0), Some(pattern)) => tx.query(sql, [&company_id, &fetch, pattern]).await,
            (Start::Skip(skip), None) => tx.query(sql, [&company_id, &fetch, skip]).await,
            (Start::Skip(skip), Some(pattern)) => {
                tx.query(sql, [&company_id, &fetch, skip, pattern]).await
            }
            (Start::After(cursor), pattern) => {
                let id = &cursor.after_id;
                match (&cursor.after, pattern) {
                    (CursorKey::Name(key), None) => {
                        tx.query(sql, [&company_id, &fetch, key, id]).await
                    }
                    (CursorKey::Name(key), Some(p)) => {
                        tx.query(sql, [&company_id, &fetch, key, id, p]).await
                    }
                    (CursorKey::CreatedAt(key), None) => {
                        tx.query(sql, [&company_id, &fetch, key, id]).await
                    }
                    (CursorKey::CreatedAt(key), Some(p)) => {
                        tx.query(sql, [&company_id, &fetch, key, id, p]).await
                    }
                }
            }
        }
    };
    let head = async {
        match (&pattern, Matching::of(query.search.as_deref())) {
            (Some(pattern), Matching::Indexed) => {
                tx.query_one(COMPANY_AND_INDEXED_MATCHES, [&company_id, pattern])
                    .await
            }
            (Some(pattern), _) => {
                tx.query_one(COMPANY_AND_SCANNED_MATCHES, [&company_id, pattern])
                    .await
            }
            (None, _) => tx.query_one(COMPANY_AND_TOTAL, [&company_id]).await,
        }
    };
    // Both are sent before either answer is awaited: one round trip.
    let (rows, head) = tokio::join!(rows, head);
    let (mut rows, head) = (rows?, head?);
    if !head.try_get::<_, bool>(0)? {
        return Ok(None);
    }
    let total: i64 = head.try_get(1)?;
    let next = if rows.len() as i64 > query.limit {
        rows.truncate(query.limit as usize);
        rows.last().map(|row| Cursor::at(row, query)).transpose()?
    } else {
        None
    };
    let employees = super::from_rows(&rows)?;
    Ok(Some(EmployeePage {
        employees,
        total,
        next,
    }))
}

/// `q` as an `ILIKE` pattern matching it anywhere, its own `%`, `_` and `\` taken literally.
fn like_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The columns of an employee, and the name sort key for cursors.
const COLUMNS: &str = concat!(employee_columns!(), ", e.name_key AS sort_name");

/// Whether the company exists (an empty list is not a missing company), and the total.
const COMPANY_AND_TOTAL: &str = "SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1),
            coalesce((SELECT employees FROM employee_counts WHERE company_id = $1), 0::bigint)";

const COMPANY_AND_INDEXED_MATCHES: &str = "SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1),
            (SELECT count(*) FROM employee_search($2))";

const COMPANY_AND_SCANNED_MATCHES: &str = concat!(
    "SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1),
            (SELECT count(*) FROM employees e WHERE e.company_id = $1 AND ",
    "(e.full_name || E'\\n' || coalesce(e.job_title, '') || E'\\n' || coalesce(e.email, ''))",
    " ILIKE $2)"
);

/// How the rows of a search are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Matching {
    /// No search.
    All,
    /// Through the trigram index, by way of `employee_search()`.
    Indexed,
    /// By testing the company's rows one by one, in the order of the sort: a search without
    /// three letters or digits in a row has no trigram for the index to look up (it would read
    /// the whole index), and it matches so many rows that a page is found after a few anyway.
    Scanned,
}

impl Matching {
    fn of(search: Option<&str>) -> Matching {
        let Some(search) = search else {
            return Matching::All;
        };
        // pg_trgm takes words apart into trigrams: a word of 3 alphanumerics yields one.
        let mut run = 0;
        for c in search.chars() {
            run = if c.is_alphanumeric() { run + 1 } else { 0 };
            if run == 3 {
                return Matching::Indexed;
            }
        }
        Matching::Scanned
    }

    /// The condition on `e` for a search whose pattern is the parameter `param`.
    fn condition(self, param: &str) -> String {
        match self {
            Matching::All => String::new(),
            // An array, not `IN (SELECT …)`: its ids become an index condition on the primary
            // key, where a semi-join would make the planner read the whole company.
            Matching::Indexed => {
                format!(" AND e.id = ANY (ARRAY(SELECT employee_search({param})))")
            }
            // The expression of employees_company_search_idx, as employee_search() tests it.
            Matching::Scanned => format!(
                " AND (e.full_name || E'\\n' || coalesce(e.job_title, '') || E'\\n' || coalesce(e.email, '')) ILIKE {param}"
            ),
        }
    }
}

/// The list statement of `query`'s sort, search and start. Built once from fixed fragments:
/// nothing of the request is ever part of the SQL, only of its parameters.
fn list_statement(query: &ListQuery) -> &'static str {
    static STATEMENTS: LazyLock<HashMap<(Sort, Matching, Begin), String>> = LazyLock::new(|| {
        let mut statements = HashMap::new();
        for sort in Sort::ALLOWED.map(|s| Sort::parse(s).expect("an allowed sort parses")) {
            for matching in [Matching::All, Matching::Indexed, Matching::Scanned] {
                for begin in [Begin::First, Begin::Offset, Begin::Cursor] {
                    let sql = build_list_statement(sort, matching, begin);
                    statements.insert((sort, matching, begin), sql);
                }
            }
        }
        statements
    });
    let begin = match query.start {
        Start::Skip(0) => Begin::First,
        Start::Skip(_) => Begin::Offset,
        Start::After(_) => Begin::Cursor,
    };
    let key = (query.sort, Matching::of(query.search.as_deref()), begin);
    &STATEMENTS[&key]
}

/// Where a list statement starts its page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Begin {
    /// At the first row. A statement of its own, without `OFFSET`: with an `OFFSET` parameter
    /// PostgreSQL cannot tell how far a generic plan would have to read, so it plans every
    /// execution anew; without, the prepared statement keeps one plan, and the first page (the
    /// one asked for most) costs no planning.
    First,
    /// After skipping `$3` rows.
    Offset,
    /// Right after a cursor's row.
    Cursor,
}

/// Parameters: `$1` company, `$2` how many rows; then `$3` the rows to skip, or `$3` the
/// cursor's sort key and `$4` its id, or nothing on the first page; then the `ILIKE` pattern
/// when searching.
fn build_list_statement(sort: Sort, matching: Matching, begin: Begin) -> String {
    let key = match sort.key {
        SortKey::Name => "e.name_key",
        SortKey::CreatedAt => "e.created_at",
    };
    let (direction, beyond) = if sort.descending {
        (" DESC", "<")
    } else {
        ("", ">")
    };
    let order = format!("{key}{direction}, e.id{direction}");
    if begin == Begin::First {
        let search = matching.condition("$3");
        return format!(
            "SELECT {COLUMNS}
             FROM employees e JOIN companies c ON c.id = e.company_id
             WHERE e.company_id = $1{search}
             ORDER BY {order} LIMIT $2"
        );
    }
    if begin == Begin::Cursor {
        let search = matching.condition("$5");
        // The row comparison is a range on the sort index: the page starts where the cursor
        // points, without reading what came before it.
        format!(
            "SELECT {COLUMNS}
             FROM employees e JOIN companies c ON c.id = e.company_id
             WHERE e.company_id = $1 AND ({key}, e.id) {beyond} ($3, $4){search}
             ORDER BY {order} LIMIT $2"
        )
    } else {
        let search = matching.condition("$4");
        // The skipped rows are stepped over in the index alone (ids only), and only the page's
        // rows are read from the table.
        format!(
            "SELECT {COLUMNS}
             FROM (SELECT e.id FROM employees e
                   WHERE e.company_id = $1{search}
                   ORDER BY {order} OFFSET $3 LIMIT $2) page
             JOIN employees e ON e.company_id = $1 AND e.id = page.id
             JOIN companies c ON c.id = e.company_id
             ORDER BY {order}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(sort: &str, search: Option<&str>, after: CursorKey) -> Cursor {
        Cursor {
            sort: Sort::parse(sort).unwrap(),
            search: search.map(str::to_owned),
            after,
            after_id: Uuid::new_v4(),
        }
    }

    #[test]
    fn sorts_round_trip_and_nothing_else_parses() {
        for s in Sort::ALLOWED {
            assert_eq!(Sort::parse(s).unwrap().as_str(), s);
        }
        for bad in ["", "-", "--name", "Name", "name ", "id", "created", "+name"] {
            assert_eq!(Sort::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cursors_round_trip() {
        let at = DateTime::from_timestamp_micros(1_764_633_600_123_456).unwrap();
        for c in [
            cursor("created_at", None, CursorKey::CreatedAt(at)),
            cursor("-created_at", Some("ada"), CursorKey::CreatedAt(at)),
            cursor("name", Some("a\\b%"), CursorKey::Name("zoë\nline".into())),
            cursor("-name", None, CursorKey::Name(String::new())),
        ] {
            let decoded = Cursor::decode(&c.encode(), c.sort, c.search.as_deref()).unwrap();
            assert_eq!(decoded, c);
        }
    }

    #[test]
    fn cursors_of_another_list_or_garbage_are_refused() {
        let c = cursor("name", Some("ada"), CursorKey::Name("ada".into()));
        let encoded = c.encode();
        let other_sort = Sort::parse("-name").unwrap();
        assert_eq!(
            Cursor::decode(&encoded, other_sort, Some("ada")),
            Err(CursorError::OtherList)
        );
        assert_eq!(
            Cursor::decode(&encoded, c.sort, None),
            Err(CursorError::OtherList)
        );
        assert_eq!(
            Cursor::decode(&encoded, c.sort, Some("ad")),
            Err(CursorError::OtherList)
        );
        let garbage = [
            String::new(),
            "not base64!".into(),
            URL_SAFE_NO_PAD.encode("2\nname\nx\n\n-\nada"),
            URL_SAFE_NO_PAD.encode("1\nname\nnot-a-uuid\n\n-\nada"),
            URL_SAFE_NO_PAD.encode(format!("1\ncreated_at\n{}\n\n-\n", Uuid::nil())),
            URL_SAFE_NO_PAD.encode(format!("1\nname\n{}\n5\n-\nada", Uuid::nil())),
            URL_SAFE_NO_PAD.encode(format!("1\nname\n{}\n\n+\nada", Uuid::nil())),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
            "A".repeat(MAX_CURSOR_LENGTH + 1),
        ];
        for g in garbage {
            assert_eq!(
                Cursor::decode(&g, c.sort, Some("ada")),
                Err(CursorError::Malformed),
                "{g:?}"
            );
        }
    }

    #[test]
    fn searches_without_a_trigram_are_scanned() {
        assert_eq!(Matching::of(None), Matching::All);
        for q in ["hopper", "abc", "x abc", "4242", "zoë"] {
            assert_eq!(Matching::of(Some(q)), Matching::Indexed, "{q}");
        }
        for q in ["a", "ab", "a b c", "ab-cd", "%", "__"] {
            assert_eq!(Matching::of(Some(q)), Matching::Scanned, "{q}");
        }
    }

    #[test]
    fn search_wildcards_are_literal() {
        assert_eq!(like_pattern("ada"), "%ada%");
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
