//! The employee list: search, sort, cursor paging and the totals.

use std::collections::BTreeSet;

use crate::helpers::{self, Response, Session, TestApp, spawn_app, uuid_of};
use serde_json::{Value, json};
use uuid::Uuid;

/// A company on the enterprise plan (no employee limit), with its admin.
async fn company(app: &TestApp, name: &str) -> Session {
    let root = app.superadmin().await;
    let admin = app.signup(name).await;
    app.set_plan(&root, admin.company_id, "enterprise").await;
    admin
}

async fn add(app: &TestApp, admin: &Session, name: &str, title: &str, email: &str) -> Value {
    let resp = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            json!({"full_name": name, "job_title": title, "email": email}),
        )
        .await;
    resp.assert_status(201);
    resp.body
}

async fn list(app: &TestApp, admin: &Session, query: &str) -> Response {
    app.get(
        &format!("/api/company/{}/employees?{query}", admin.company_id),
        Some(&admin.token),
    )
    .await
}

fn names(resp: &Response) -> Vec<String> {
    resp.body
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {}", resp.body))
        .iter()
        .map(|e| e["full_name"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(resp: &Response) -> Vec<Uuid> {
    resp.body.as_array().unwrap().iter().map(uuid_of).collect()
}

fn total(resp: &Response) -> i64 {
    resp.headers["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn total_exact(resp: &Response) -> bool {
    match resp.headers["x-total-count-exact"].to_str().unwrap() {
        "true" => true,
        "false" => false,
        other => panic!("X-Total-Count-Exact: {other:?}"),
    }
}

fn next_cursor(resp: &Response) -> Option<String> {
    resp.headers
        .get("x-next-cursor")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// `q` encoded for a query string.
fn encoded(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn search_matches_name_title_or_email_ignoring_case_within_the_company() {
    let app = spawn_app().await;
    let admin = company(&app, "Search Co").await;
    add(
        &app,
        &admin,
        "Ada Lovelace",
        "Analyst",
        "ada@search.example",
    )
    .await;
    add(
        &app,
        &admin,
        "Grace Hopper",
        "Admiral",
        "grace@navy.example",
    )
    .await;
    add(
        &app,
        &admin,
        "Alan Turing",
        "Codebreaker",
        "alan@bletchley.example",
    )
    .await;
    add(
        &app,
        &admin,
        "Edsger Dijkstra",
        "100% Structured",
        "ed_d@ewd.example",
    )
    .await;
    // Another company's employees match too, and must never show.
    let other = company(&app, "Other Search Co").await;
    add(&app, &other, "Ada Other", "Analyst", "ada@other.example").await;

    let cases: &[(&str, &[&str])] = &[
        ("ada", &["Ada Lovelace"]),
        ("LOVELACE", &["Ada Lovelace"]),
        ("admiral", &["Grace Hopper"]),
        ("navy.example", &["Grace Hopper"]),
        (
            "a",
            &[
                "Ada Lovelace",
                "Grace Hopper",
                "Alan Turing",
                "Edsger Dijkstra",
            ],
        ),
        ("  turing  ", &["Alan Turing"]),
        // Wildcards of LIKE are plain characters.
        ("100%", &["Edsger Dijkstra"]),
        ("%", &["Edsger Dijkstra"]),
        ("d_d", &["Edsger Dijkstra"]),
        ("_", &["Edsger Dijkstra"]),
        // A match never spans two fields.
        ("Lovelace\u{20}Analyst", &[]),
        ("other", &[]),
        ("nobody", &[]),
    ];
    for (q, expected) in cases {
        let resp = list(&app, &admin, &format!("q={}", encoded(q))).await;
        resp.assert_status(200);
        assert_eq!(names(&resp), *expected, "q={q:?}");
        assert_eq!(total(&resp), expected.len() as i64, "q={q:?}");
        assert!(total_exact(&resp), "q={q:?}");
    }
    // An empty search is no search.
    let resp = list(&app, &admin, "q=").await;
    assert_eq!(total(&resp), 4);
    assert_eq!(names(&resp).len(), 4);

    // The other company sees its own only.
    let resp = list(&app, &other, "q=ada").await;
    assert_eq!(names(&resp), ["Ada Other"]);
    assert_eq!(total(&resp), 1);

    // The total with a search counts every match, not the page.
    let resp = list(&app, &admin, "q=a&limit=2").await;
    assert_eq!(names(&resp).len(), 2);
    assert_eq!(total(&resp), 4);
    assert!(next_cursor(&resp).is_some());
}

#[tokio::test]
async fn every_sort_in_both_directions_with_ties_broken_by_id() {
    let app = spawn_app().await;
    let admin = company(&app, "Sort Co").await;
    let mut created = Vec::new();
    for name in [
        "bob",
        "Alice",
        "carol",
        "Same Name",
        "same name",
        "Same Name",
    ] {
        created.push(add(&app, &admin, name, "Engineer", "x@sort.example").await);
    }
    let id = |v: &Value| uuid_of(v);

    // By name, ignoring case; equal names by id.
    let mut same: Vec<Uuid> = created[3..].iter().map(id).collect();
    same.sort();
    let by_name = [
        vec![id(&created[1]), id(&created[0]), id(&created[2])],
        same.clone(),
    ]
    .concat();
    let resp = list(&app, &admin, "sort=name").await;
    resp.assert_status(200);
    assert_eq!(ids(&resp), by_name);
    let resp = list(&app, &admin, "sort=-name").await;
    assert_eq!(
        ids(&resp),
        by_name.iter().rev().copied().collect::<Vec<_>>()
    );

    // By creation, the default; equal times by id.
    let oldest_first: Vec<Uuid> = created.iter().map(id).collect();
    assert_eq!(ids(&list(&app, &admin, "").await), oldest_first);
    assert_eq!(
        ids(&list(&app, &admin, "sort=created_at").await),
        oldest_first
    );
    assert_eq!(
        ids(&list(&app, &admin, "sort=-created_at").await),
        oldest_first.iter().rev().copied().collect::<Vec<_>>()
    );
    let owner = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
    owner
        .execute(
            "UPDATE employees SET created_at = '2026-01-01T00:00:00Z' WHERE company_id = $1",
            &[&admin.company_id],
        )
        .await
        .unwrap();
    let mut by_id = oldest_first.clone();
    by_id.sort();
    assert_eq!(ids(&list(&app, &admin, "sort=created_at").await), by_id);
    by_id.reverse();
    assert_eq!(ids(&list(&app, &admin, "sort=-created_at").await), by_id);

    // A sort with a search, paged by cursor.
    let resp = list(&app, &admin, "sort=-name&q=name&limit=2").await;
    assert_eq!(
        ids(&resp),
        same.iter().rev().take(2).copied().collect::<Vec<_>>()
    );
    let cursor = next_cursor(&resp).unwrap();
    let resp = list(
        &app,
        &admin,
        &format!("sort=-name&q=name&limit=2&cursor={cursor}"),
    )
    .await;
    resp.assert_status(200);
    assert_eq!(ids(&resp), [same[0]]);
    assert_eq!(total(&resp), 3);
    assert_eq!(next_cursor(&resp), None);
}

/// Walks the list page by page with `cursor` while employees are added and removed between the
/// pages: every employee there from start to end appears exactly once, in order.
#[tokio::test]
async fn cursor_paging_walks_the_list_while_it_changes() {
    let app = spawn_app().await;
    let admin = company(&app, "Cursor Co").await;
    let mut expected_names = BTreeSet::new();
    for i in 0..23 {
        let name = format!("Person {:02}", i * 2);
        add(&app, &admin, &name, "Engineer", "p@cursor.example").await;
        expected_names.insert(name);
    }
    for sort in ["name", "-name", "created_at", "-created_at"] {
        let mut seen: Vec<String> = Vec::new();
        let mut seen_ids = BTreeSet::new();
        let mut added = Vec::new();
        let mut query = format!("sort={sort}&limit=5");
        let mut pages = 0;
        loop {
            let resp = list(&app, &admin, &query).await;
            resp.assert_status(200);
            pages += 1;
            for (name, id) in names(&resp).into_iter().zip(ids(&resp)) {
                assert!(seen_ids.insert(id), "{sort}: {name} twice");
                seen.push(name);
            }
            let Some(cursor) = next_cursor(&resp) else {
                break;
            };
            // Rows come in on both sides of the position, between every two pages.
            for name in [
                format!("Person {:02}", pages * 2 - 1),
                format!("Zed {sort} {pages}"),
            ] {
                added.push(uuid_of(
                    &add(&app, &admin, &name, "New", "n@cursor.example").await,
                ));
            }
            query = format!("sort={sort}&limit=5&cursor={cursor}");
            assert!(pages < 50, "{sort}: the walk does not end");
        }
        let original: Vec<&String> = seen
            .iter()
            .filter(|n| expected_names.contains(*n))
            .collect();
        assert_eq!(
            original.len(),
            expected_names.len(),
            "{sort}: every original employee once: {seen:?}"
        );
        // What was there all along comes in the order asked for.
        let mut in_order = original.clone();
        in_order.sort();
        if sort == "-name" || sort == "-created_at" {
            in_order.reverse();
        }
        assert_eq!(original, in_order, "{sort}");
        // Remove what this walk added, for the next one.
        for id in added {
            app.delete(&format!("/api/employees/{id}"), Some(&admin.token))
                .await
                .assert_status(204);
        }
    }
    // The last page by cursor has no next cursor; a full list in one page neither.
    let resp = list(&app, &admin, "limit=100").await;
    assert_eq!(names(&resp).len(), 23);
    assert_eq!(next_cursor(&resp), None);
    // `skip` pages hand out a cursor too, which continues where they end.
    let resp = list(&app, &admin, "skip=20&limit=2").await;
    let cursor = next_cursor(&resp).unwrap();
    let resp = list(&app, &admin, &format!("limit=2&cursor={cursor}")).await;
    assert_eq!(names(&resp), ["Person 44"]);
    assert_eq!(next_cursor(&resp), None);
}

#[tokio::test]
async fn bad_search_sort_or_cursor_is_refused() {
    let app = spawn_app().await;
    let admin = company(&app, "Refusals Co").await;
    for i in 0..3 {
        add(
            &app,
            &admin,
            &format!("Person {i}"),
            "Engineer",
            "p@refusals.example",
        )
        .await;
    }
    let cursor = next_cursor(&list(&app, &admin, "limit=1&sort=name&q=person").await).unwrap();
    let other_cursor = next_cursor(&list(&app, &admin, "limit=1").await).unwrap();
    let long_q = "a".repeat(101);
    let bad = [
        "sort=id".to_owned(),
        "sort=".to_owned(),
        "sort=name,created_at".to_owned(),
        "sort=%2Bname".to_owned(),
        format!("q={long_q}"),
        "q=a%0Ab".to_owned(),
        "q=a%09b".to_owned(),
        "q=%E2%80%AEevil".to_owned(),
        "cursor=".to_owned(),
        "cursor=not-a-cursor".to_owned(),
        format!("cursor={}", "A".repeat(3000)),
        // A cursor of another sort or search.
        format!("cursor={cursor}"),
        format!("cursor={cursor}&sort=name"),
        format!("cursor={cursor}&q=person"),
        format!("cursor={cursor}&sort=-name&q=person"),
        format!("cursor={cursor}&sort=name&q=perso"),
        format!("cursor={other_cursor}&sort=name"),
        // A cursor says where the page starts; skip cannot say it too.
        format!("cursor={other_cursor}&skip=0"),
    ];
    for query in bad {
        let resp = list(&app, &admin, &query).await;
        resp.assert_error(422, "invalid_parameter");
        assert!(
            !resp.body["detail"].as_str().unwrap().contains("Internal"),
            "{query}: {}",
            resp.body
        );
    }
    let resp = list(&app, &admin, "sort=id").await;
    let detail = resp.body["detail"].as_str().unwrap();
    for allowed in ["name", "-name", "created_at", "-created_at"] {
        assert!(detail.contains(&format!("`{allowed}`")), "{detail}");
    }
    // The right cursor with the same sort and search works.
    let resp = list(
        &app,
        &admin,
        &format!("cursor={cursor}&sort=name&q=person&limit=1"),
    )
    .await;
    resp.assert_status(200);
    assert_eq!(names(&resp), ["Person 1"]);
}

#[tokio::test]
async fn the_total_follows_additions_and_deletions() {
    let app = spawn_app().await;
    let admin = company(&app, "Count Co").await;
    let other = company(&app, "Other Count Co").await;
    let empty = list(&app, &admin, "").await;
    empty.assert_status(200);
    assert_eq!(total(&empty), 0);
    assert_eq!(empty.body, json!([]));
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(uuid_of(
            &add(
                &app,
                &admin,
                &format!("Person {i}"),
                "Engineer",
                "p@count.example",
            )
            .await,
        ));
    }
    add(&app, &other, "Person X", "Engineer", "p@count.example").await;
    assert_eq!(total(&list(&app, &admin, "limit=1").await), 4);
    assert_eq!(total(&list(&app, &other, "").await), 1);
    app.delete(&format!("/api/employees/{}", ids[0]), Some(&admin.token))
        .await
        .assert_status(204);
    let resp = list(&app, &admin, "").await;
    assert_eq!(total(&resp), 3);
    assert_eq!(names(&resp), ["Person 1", "Person 2", "Person 3"]);
    assert_eq!(total(&list(&app, &admin, "q=person%203").await), 1);
    assert_eq!(total(&list(&app, &other, "").await), 1);

    // The kept count agrees with a count of the rows, for every company.
    let owner = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
    let disagreeing: i64 = owner
        .query_one(
            "SELECT count(*) FROM companies c
             WHERE coalesce((SELECT employees FROM employee_counts k WHERE k.company_id = c.id), 0)
                   <> (SELECT count(*) FROM employees e WHERE e.company_id = c.id)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(disagreeing, 0);

    // A company that is not the caller's is not found, with or without a search.
    for query in ["", "q=person", "sort=name"] {
        app.get(
            &format!("/api/company/{}/employees?{query}", other.company_id),
            Some(&admin.token),
        )
        .await
        .assert_error(404, "not_found");
    }
}

/// `employee_search_keys()` reads past the wall to use its index: it must answer exactly what
/// the employees policy would, the current tenant's matches, and nothing without a tenant; and
/// never more than it was asked for.
#[tokio::test]
async fn the_search_function_answers_only_the_current_tenant() {
    let app = spawn_app().await;
    let a = company(&app, "Search Wall A").await;
    let b = company(&app, "Search Wall B").await;
    let ada_a = add(&app, &a, "Ada Walled", "Analyst", "ada@a.example").await;
    add(&app, &b, "Ada Walled", "Analyst", "ada@b.example").await;
    let ada_a_id = uuid_of(&ada_a);
    let service = helpers::connect(&helpers::app_role_url(&app.dbname)).await;
    let search = "SELECT coalesce(array_agg(id), '{}') FROM employee_search_keys('%walled%', $1)";
    let found = |rows: Vec<tokio_postgres::Row>| -> Vec<Uuid> { rows[0].get(0) };

    // No tenant at all, then a tenant that is no company.
    assert!(found(service.query(search, &[&10]).await.unwrap()).is_empty());
    for tenant in [String::new(), Uuid::new_v4().to_string()] {
        service.batch_execute("BEGIN").await.unwrap();
        service
            .execute("SELECT set_config('app.company_id', $1, true)", &[&tenant])
            .await
            .unwrap();
        assert!(
            found(service.query(search, &[&10]).await.unwrap()).is_empty(),
            "{tenant:?}"
        );
        service.batch_execute("ROLLBACK").await.unwrap();
    }
    // Tenant A: A's employee only, even as a superadmin; with its sort keys; within the limit.
    for role in ["admin", "superadmin"] {
        service.batch_execute("BEGIN").await.unwrap();
        service
            .execute(
                "SELECT set_config('app.company_id', $1, true), set_config('app.role', $2, true)",
                &[&a.company_id.to_string(), &role],
            )
            .await
            .unwrap();
        assert_eq!(
            found(service.query(search, &[&10]).await.unwrap()),
            [ada_a_id],
            "{role}"
        );
        for limit in [0, -1] {
            assert!(
                found(service.query(search, &[&limit]).await.unwrap()).is_empty(),
                "{role}, limit {limit}"
            );
        }
        let keys = service
            .query_one(
                "SELECT created_at, name_key FROM employee_search_keys('%walled%', 10)",
                &[],
            )
            .await
            .unwrap();
        let created: chrono::DateTime<chrono::Utc> = keys.get(0);
        assert_eq!(created.to_rfc3339(), ada_a["created_at"].as_str().unwrap());
        assert_eq!(keys.get::<_, &str>(1), "ada walled");
        service.batch_execute("ROLLBACK").await.unwrap();
    }
}

/// Adds `n` employees to `company` in one statement, as the database owner (past the plan
/// limit): `Walker {i}`, job title `Engineer`, created a second apart in the order of `i`.
async fn add_many(app: &TestApp, company: &Session, n: i32) {
    let owner = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
    owner
        .execute(
            "INSERT INTO employees (company_id, id, full_name, job_title, email, public_slug,
                                    created_at)
             SELECT $1, gen_random_uuid(), 'Walker ' || i, 'Engineer', 'w' || i || '@many.example',
                    'walker-' || i, now() - make_interval(secs => $2::int - i)
             FROM generate_series(1, $2::int) AS i",
            &[&company.company_id, &n],
        )
        .await
        .unwrap();
}

/// A search that matches more than 1,000 employees is counted up to 1,000 and says so; its
/// pages are still right, whether it is looked up in the trigram index or scanned.
#[tokio::test]
async fn a_broad_search_is_counted_up_to_the_limit_and_says_so() {
    let app = spawn_app().await;
    let admin = company(&app, "Broad Co").await;
    add_many(&app, &admin, 1003).await;

    let resp = list(&app, &admin, "limit=2").await;
    assert_eq!((total(&resp), total_exact(&resp)), (1003, true));
    // `walker` has trigrams (the index), `w` none (the scan); both match all 1,003.
    for q in ["walker", "w", "engineer"] {
        let resp = list(&app, &admin, &format!("q={q}&sort=-name&limit=3")).await;
        resp.assert_status(200);
        assert_eq!((total(&resp), total_exact(&resp)), (1000, false), "q={q}");
        // Names sort as text: 999, 998, …
        assert_eq!(
            names(&resp),
            ["Walker 999", "Walker 998", "Walker 997"],
            "q={q}"
        );
        let cursor = next_cursor(&resp).unwrap();
        let resp = list(
            &app,
            &admin,
            &format!("q={q}&sort=-name&limit=3&cursor={cursor}"),
        )
        .await;
        assert_eq!(
            names(&resp),
            ["Walker 996", "Walker 995", "Walker 994"],
            "q={q}"
        );
        assert!(!total_exact(&resp), "q={q}");
        let resp = list(&app, &admin, &format!("q={q}&limit=2&skip=1001")).await;
        assert_eq!(names(&resp), ["Walker 1002", "Walker 1003"], "q={q}");
    }
    // Up to the limit the count is exact: `walker 1` matches 1, 10–19, 100–199, 1000–1003.
    let resp = list(&app, &admin, "q=walker%201&limit=2").await;
    assert_eq!((total(&resp), total_exact(&resp)), (115, true));
    let resp = list(&app, &admin, "q=walker%2010&sort=name&limit=20").await;
    let expected: Vec<String> = ["10", "100", "1000", "1001", "1002", "1003", "101", "102"]
        .into_iter()
        .chain(["103", "104", "105", "106", "107", "108", "109"])
        .map(|n| format!("Walker {n}"))
        .collect();
    assert_eq!(names(&resp), expected);
    assert_eq!((total(&resp), total_exact(&resp)), (15, true));
    assert_eq!(next_cursor(&resp), None);
}

/// A page by `skip` is the same slice of the list whichever end it is found from, in every sort,
/// with or without a search; past the end it is empty, and the total stays.
#[tokio::test]
async fn skip_pages_are_slices_of_the_whole_list() {
    let app = spawn_app().await;
    let admin = company(&app, "Skip Co").await;
    add_many(&app, &admin, 21).await;
    for sort in ["name", "-name", "created_at", "-created_at"] {
        for q in ["", "walker", "1"] {
            let whole = ids(&list(&app, &admin, &format!("sort={sort}&q={q}&limit=100")).await);
            let size = whole.len();
            assert!(size >= 12, "{sort} {q}: {size}");
            for skip in 0..=size + 1 {
                let resp = list(
                    &app,
                    &admin,
                    &format!("sort={sort}&q={q}&limit=3&skip={skip}"),
                )
                .await;
                resp.assert_status(200);
                let expected = &whole[skip.min(size)..(skip + 3).min(size)];
                assert_eq!(ids(&resp), expected, "sort={sort} q={q} skip={skip}");
                assert_eq!(total(&resp), size as i64, "sort={sort} q={q} skip={skip}");
                assert_eq!(next_cursor(&resp).is_some(), skip + 3 < size);
            }
        }
    }
}
