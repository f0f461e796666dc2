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

/// How many matches of a search are counted at most: a search's total stops there, and
/// `total_exact` says so. It bounds what one request makes the database do, however broad the
/// search (`q=a` matches nearly everyone): counting every match of a large company costs more than
/// the page does, for a figure nobody reads to the last digit.
pub const SEARCH_COUNT_LIMIT: i64 = 1000;

/// One page of the list.
pub struct EmployeePage {
    /// The employees of the page.
    pub employees: Vec<Employee>,
    /// How many employees the whole list holds (with `q`: how many match, up to
    /// [`SEARCH_COUNT_LIMIT`]).
    pub total: i64,
    /// Whether `total` is the exact size of the list; `false` when a search matches more than
    /// [`SEARCH_COUNT_LIMIT`] (then `total` is that limit: at least that many match).
    pub total_exact: bool,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// One page of `company_id`'s employees, or `None` when there is no such company (to the
/// tenant: row-level security hides the others).
///
/// One statement answers the page and the total together: one snapshot for both, and one
/// statement fewer per request than a count of its own.
pub async fn list(
    tx: &TenantTx,
    company_id: Uuid,
    query: &ListQuery,
) -> Result<Option<EmployeePage>, DbError> {
    let pattern = query.search.as_deref().map(like_pattern);
    // One row more than asked tells whether there is a next page.
    let fetch = query.limit + 1;
    let sql = list_statement(query);
    let mut rows = match (&query.start, &pattern) {
        (Start::Skip(0), None) => tx.query(sql, [&company_id, &fetch]).await,
        (Start::Skip(0), Some(pattern)) => tx.query(sql, [&company_id, &fetch, pattern]).await,
        (Start::Skip(skip), None) => tx.query(sql, [&company_id, &fetch, skip]).await,
        (Start::Skip(skip), Some(pattern)) => {
            tx.query(sql, [&company_id, &fetch, skip, pattern]).await
        }
        (Start::After(cursor), pattern) => {
            let id = &cursor.after_id;
            match (&cursor.after, pattern) {
                (CursorKey::Name(key), None) => tx.query(sql, [&company_id, &fetch, key, id]).await,
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
    }?;
    // Every row carries the head; an empty page is the head alone, its employee columns NULL.
    let Some(head) = rows.first() else {
        return Err(DbError::Decode("the list answered no head row".into()));
    };
    if !head.try_get::<_, bool>("company_found")? {
        return Ok(None);
    }
    let total: i64 = head.try_get("list_total")?;
    let total_exact: bool = head.try_get("list_total_exact")?;
    if head.try_get::<_, Option<Uuid>>("id")?.is_none() {
        rows.clear();
    }
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
        total_exact,
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

/// What a search matches: the expression of employees_company_search_idx (V8). Tested row by
/// row (the walk of a sort index), never through that index: under the tenant wall ILIKE may not
/// use it, and a pattern without a trigram would read all of it.
const SEARCHED: &str =
    "(e.full_name || E'\\n' || coalesce(e.job_title, '') || E'\\n' || coalesce(e.email, ''))";

/// How the rows of a search are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Matching {
    /// No search.
    All,
    /// Through the trigram index, by way of `employee_search_keys()`, up to one match more
    /// than [`SEARCH_COUNT_LIMIT`]: a search that matches fewer is counted exactly and its page
    /// sorted from the matches; one that matches more is a broad one, whose page the walk of the
    /// sort index finds after a few rows (as for [`Matching::Scanned`]).
    Indexed,
    /// By testing the company's rows one by one, in the order of the sort: a search without
    /// three letters or digits in a row has no trigram for the index to look up (it would read
    /// the whole index), and it matches so many rows that a page is found after a few anyway.
    /// The count stops after [`SEARCH_COUNT_LIMIT`] matches.
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

/// The parts of a list statement for one sort.
struct Order {
    /// The sort key of `e`, and the same of the search matches `m`.
    key: &'static str,
    match_key: &'static str,
    /// The key's name among the page's columns.
    page_key: &'static str,
    /// ` DESC` or nothing, and the opposite.
    direction: &'static str,
    reverse: &'static str,
    /// The comparison that means "after" in this direction.
    beyond: &'static str,
}

impl Order {
    fn of(sort: Sort) -> Order {
        let (key, match_key, page_key) = match sort.key {
            SortKey::Name => ("e.name_key", "m.name_key", "p.sort_name"),
            SortKey::CreatedAt => ("e.created_at", "m.created_at", "p.created_at"),
        };
        let (direction, reverse, beyond) = if sort.descending {
            (" DESC", "", "<")
        } else {
            ("", " DESC", ">")
        };
        Order {
            key,
            match_key,
            page_key,
            direction,
            reverse,
            beyond,
        }
    }

    /// `ORDER BY` of `key` and `id` of `table`, forwards or backwards.
    fn by(&self, key: &str, table: &str, backwards: bool) -> String {
        let direction = if backwards {
            self.reverse
        } else {
            self.direction
        };
        format!("{key}{direction}, {table}.id{direction}")
    }
}

/// Parameters: `$1` company, `$2` how many rows; then `$3` the rows to skip, or `$3` the
/// cursor's sort key and `$4` its id, or nothing on the first page; then the `ILIKE` pattern
/// when searching.
///
/// Every statement answers the head (`company_found`, `list_total`, `list_total_exact`) LEFT
/// JOINed to the page, so an empty page is still one row.
fn build_list_statement(sort: Sort, matching: Matching, begin: Begin) -> String {
    let order = Order::of(sort);
    let pattern = match begin {
        Begin::First => "$3",
        Begin::Offset => "$4",
        Begin::Cursor => "$5",
    };
    let limit = SEARCH_COUNT_LIMIT;
    let found = "EXISTS (SELECT 1 FROM companies WHERE id = $1)";
    let (with, total, exact, page) = match matching {
        Matching::All => (
            match begin {
                Begin::Offset => format!("WITH {} ", start_row(&order)),
                Begin::First | Begin::Cursor => String::new(),
            },
            "coalesce((SELECT employees FROM employee_counts WHERE company_id = $1), 0::bigint)"
                .to_owned(),
            "true".to_owned(),
            unfiltered_page(&order, begin),
        ),
        Matching::Scanned => (
            format!(
                "WITH counted AS MATERIALIZED (
                   SELECT count(*) AS n FROM (
                     SELECT FROM employees e WHERE e.company_id = $1 AND {SEARCHED} ILIKE {pattern}
                     ORDER BY e.created_at, e.id LIMIT {limit} + 1) matches) "
            ),
            format!("least((SELECT n FROM counted), {limit})"),
            format!("(SELECT n FROM counted) <= {limit}"),
            scanned_page(&order, begin, pattern, "true"),
        ),
        Matching::Indexed => {
            // Few matches: the page is sorted out of them, and its rows looked up by id (an
            // array, not `IN (SELECT …)`: its ids become an index condition on the primary key,
            // where a semi-join would make the planner read the whole company). Many: the walk.
            let start = match begin {
                Begin::First | Begin::Offset => String::new(),
                Begin::Cursor => format!(
                    " WHERE ({}, m.id) {} ($3, $4)",
                    order.match_key, order.beyond
                ),
            };
            let offset = if begin == Begin::Offset {
                " OFFSET $3"
            } else {
                ""
            };
            let few = format!(
                "SELECT {COLUMNS}
                 FROM employees e JOIN companies c ON c.id = e.company_id
                 WHERE e.company_id = $1 AND (SELECT n FROM counted) <= {limit}
                   AND e.id = ANY (ARRAY(SELECT m.id FROM matches m{start}
                                         ORDER BY {}{offset} LIMIT $2))",
                order.by(order.match_key, "m", false)
            );
            let many = scanned_page(
                &order,
                begin,
                pattern,
                &format!("(SELECT n FROM counted) > {limit}"),
            );
            (
                format!(
                    "WITH matches AS MATERIALIZED (
                       SELECT * FROM employee_search_keys({pattern}, {limit} + 1)),
                     counted AS MATERIALIZED (SELECT count(*) AS n FROM matches) "
                ),
                format!("least((SELECT n FROM counted), {limit})"),
                format!("(SELECT n FROM counted) <= {limit}"),
                format!("({few}) UNION ALL ({many})"),
            )
        }
    };
    format!(
        "{with}SELECT head.*, p.*
         FROM (SELECT {found} AS company_found, {total} AS list_total,
                      {exact} AS list_total_exact) head
         LEFT JOIN ({page}) p ON true
         ORDER BY {}",
        order.by(order.page_key, "p", false)
    )
}

/// A page of the whole list.
fn unfiltered_page(order: &Order, begin: Begin) -> String {
    let key = order.key;
    let by = order.by(key, "e", false);
    let select = format!(
        "SELECT {COLUMNS}
         FROM employees e JOIN companies c ON c.id = e.company_id
         WHERE e.company_id = $1"
    );
    match begin {
        Begin::First => format!("{select} ORDER BY {by} LIMIT $2"),
        // The row comparison is a range on the sort index: the page starts where the cursor
        // points, without reading what came before it.
        Begin::Cursor => format!(
            "{select} AND ({key}, e.id) {} ($3, $4) ORDER BY {by} LIMIT $2",
            order.beyond
        ),
        // The page starts at the row `$3` rows in (`start_row`, see [`start_row`]); from there
        // on it is a range of the index, as after a cursor.
        Begin::Offset => format!(
            "{select} AND ({key}, e.id) {}= ((SELECT k FROM start_row), (SELECT i FROM start_row))
             ORDER BY {by} LIMIT $2",
            order.beyond
        ),
    }
}

/// The sort key and id of the row `$3` rows into the whole list, as a common table expression:
/// found by stepping over the rows before it in the sort index alone (an index-only scan), from
/// whichever end is nearer, so the last page costs what the first does and the middle one half a
/// walk of the company. The kept count says where the end is, in the same snapshot as the rows.
/// No row when `$3` is past the end.
fn start_row(order: &Order) -> String {
    let key = order.key;
    let (by, back) = (order.by(key, "e", false), order.by(key, "e", true));
    let size = "coalesce((SELECT employees FROM employee_counts WHERE company_id = $1), 0::bigint)";
    format!(
        "size AS MATERIALIZED (SELECT {size} AS n),
         start_row AS MATERIALIZED (
           (SELECT {key} AS k, e.id AS i FROM employees e
            WHERE e.company_id = $1 AND $3::bigint * 2 < (SELECT n FROM size)
            ORDER BY {by} OFFSET $3 LIMIT 1)
           UNION ALL
           -- greatest(): a Limit computes its offset even when its branch is switched off.
           (SELECT {key}, e.id FROM employees e
            WHERE e.company_id = $1 AND $3::bigint * 2 >= (SELECT n FROM size) AND $3 < (SELECT n FROM size)
            ORDER BY {back} OFFSET greatest((SELECT n FROM size) - 1 - $3, 0) LIMIT 1))"
    )
}

/// A page of a search found by walking the sort index and testing each row, when `gate` holds.
fn scanned_page(order: &Order, begin: Begin, pattern: &str, gate: &str) -> String {
    let key = order.key;
    let by = order.by(key, "e", false);
    let (start, offset) = match begin {
        Begin::First => (String::new(), ""),
        Begin::Cursor => (format!(" AND ({key}, e.id) {} ($3, $4)", order.beyond), ""),
        Begin::Offset => (String::new(), " OFFSET $3"),
    };
    format!(
        "SELECT {COLUMNS}
         FROM employees e JOIN companies c ON c.id = e.company_id
         WHERE e.company_id = $1 AND {gate}{start} AND {SEARCHED} ILIKE {pattern}
         ORDER BY {by}{offset} LIMIT $2"
    )
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
