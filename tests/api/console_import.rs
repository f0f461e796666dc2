//! The console's CSV import: upload, column mapping, preview (a dry run), import with its
//! progress page, re-import by email, the plan's limit, and the wall between companies.

use crate::{
    console_client::{ConsoleClient, Page},
    helpers::{ADMIN_PASSWORD, PATIENCE, TEAMMATE_PASSWORD, TestApp, spawn_app},
};

const XSS: &str = "<script>alert(1)</script>";

fn csv_file() -> String {
    format!(
        "Name,email,job_title,Notes\n\
         Ada Lovelace,ada@example.com,Engineer,first\n\
         Bad Row,not-an-email,Tester,second\n\
         \"{XSS}\",xss@example.com,Hacker,third\n"
    )
}

async fn upload(console: &mut ConsoleClient, csv: &str) -> Page {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
            .file_name("people.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    console.post_multipart("/app/import", form).await
}

/// Uploads `csv` and answers the path of its import.
async fn uploaded(console: &mut ConsoleClient, csv: &str) -> String {
    let page = upload(console, csv).await;
    page.assert_status(303);
    page.location().unwrap().to_owned()
}

const MAPPING: [(&str, &str); 4] = [
    ("col0", "full_name"),
    ("col1", "email"),
    ("col2", "job_title"),
    ("col3", ""),
];

async fn employee_count(app: &TestApp, admin: &crate::helpers::Session) -> usize {
    let resp = app
        .get(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
        )
        .await;
    resp.assert_status(200);
    // The whole count, not the page's.
    resp.headers["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_file_is_mapped_previewed_and_imported_and_a_second_import_updates_by_email() {
    let app = spawn_app().await;
    let admin = app.signup("Importers").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let page = console.get("/app/import").await;
    page.assert_status(200);
    assert!(page.body.contains(r#"enctype="multipart/form-data""#));

    let path = uploaded(&mut console, &csv_file()).await;
    assert!(path.starts_with("/app/import/"), "{path}");

    // Headers that name a field are matched already; the others are left to the admin.
    let page = console.get(&path).await;
    page.assert_status(200);
    assert!(
        page.body.contains(r#"<option value="email" selected>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"<option value="job_title" selected>"#));
    assert!(
        page.body
            .contains(r#"<option value="" selected>Ignore this column"#)
    );

    let page = console
        .post_form(&format!("{path}/preview"), &MAPPING)
        .await;
    page.assert_status(200);
    assert!(page.body.contains("Nothing has been imported yet"));
    assert!(
        page.body.contains("`email`"),
        "the bad row's problem: {}",
        page.body
    );
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.body.contains(XSS));
    assert_eq!(
        employee_count(&app, &admin).await,
        0,
        "a preview writes nothing"
    );

    let page = console.post_form(&format!("{path}/run"), &MAPPING).await;
    page.assert_status(303);
    let progress = page.location().unwrap().to_owned();
    assert_eq!(progress, format!("{path}/progress"));
    let page = finished(&mut console, &progress).await;
    assert_total(&page, "Created", 2);
    assert_total(&page, "In error", 1);
    assert_eq!(employee_count(&app, &admin).await, 2);
    // The file is gone once imported, and running it again starts nothing.
    console.get(&path).await.assert_status(404);
    let page = console.post_form(&format!("{path}/run"), &MAPPING).await;
    page.assert_status(404);
    assert_eq!(employee_count(&app, &admin).await, 2);

    // The same file again: matched by email, nothing new.
    let path = uploaded(&mut console, &csv_file()).await;
    let page = console.post_form(&format!("{path}/run"), &MAPPING).await;
    page.assert_status(303);
    let page = finished(&mut console, page.location().unwrap()).await;
    assert_total(&page, "Created", 0);
    assert_total(&page, "Unchanged", 2);
    assert_eq!(employee_count(&app, &admin).await, 2);
}

/// Follows the progress page at `path` until the import has finished; the finished page.
async fn finished(console: &mut ConsoleClient, path: &str) -> Page {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let page = console.get(path).await;
        page.assert_status(200);
        if page.body.contains("Import finished") {
            return page;
        }
        assert!(
            page.body.contains("Importing employees"),
            "neither running nor finished: {}",
            page.body
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the import at {path} has not finished after {PATIENCE:?}: {}",
            page.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `<dt>{label}</dt><dd>{n}</dd>`: one of the import's totals as shown.
#[track_caller]
fn assert_total(page: &Page, label: &str, n: usize) {
    let shown = format!("<dt>{label}</dt><dd>{n}</dd>");
    assert!(page.body.contains(&shown), "no {shown} in:\n{}", page.body);
}

#[tokio::test]
async fn a_long_import_shows_its_progress_and_htmx_follows_it() {
    let app = spawn_app().await;
    let admin = app.signup("Progress Co").await;
    let root = app.superadmin().await;
    app.set_plan(&root, admin.company_id, "enterprise").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let mut csv = String::from("full_name,email\n");
    for i in 0..3000 {
        csv.push_str(&format!("Person {i},person{i}@example.com\n"));
    }
    let path = uploaded(&mut console, &csv).await;
    let mapping = [("col0", "full_name"), ("col1", "email")];
    // The import waits for the plan's lock, held here, so it is seen running.
    let mut db = crate::helpers::superuser(&app).await;
    let hold = db.transaction().await.unwrap();
    hold.execute(
        "SELECT 1 FROM subscriptions WHERE company_id = $1 AND active FOR UPDATE",
        &[&admin.company_id],
    )
    .await
    .unwrap();
    let page = console.post_form(&format!("{path}/run"), &mapping).await;
    page.assert_status(303);
    let progress = page.location().unwrap().to_owned();
    assert_eq!(progress, format!("{path}/progress"));

    // The page says how far it is; a second click follows the same import.
    let page = console.get(&progress).await;
    page.assert_status(200);
    assert!(page.body.contains("Importing employees"), "{}", page.body);
    assert!(
        page.body.contains("0 of 3000 rows written"),
        "{}",
        page.body
    );
    let again = console.post_form(&format!("{path}/run"), &mapping).await;
    again.assert_status(303);
    assert_eq!(again.location(), Some(progress.as_str()));
    // Another file waits its turn: one import of a company runs at a time.
    let other = uploaded(
        &mut console,
        "full_name,email\nLate Comer,late@example.com\n",
    )
    .await;
    let busy = console.post_form(&format!("{other}/run"), &mapping).await;
    busy.assert_status(409);
    assert!(
        busy.body
            .contains("Another import of your company is running"),
        "{}",
        busy.body
    );
    // What htmx asks for is the part that changes; while the import runs, it asks again.
    let part = console
        .get_with(
            &progress,
            &[("HX-Request", "true"), ("HX-Target", "import-status")],
        )
        .await;
    part.assert_status(200);
    assert!(!part.body.contains("<html"), "{}", part.body);
    assert!(
        part.body.starts_with(r#"<div id="import-status""#),
        "{}",
        part.body
    );
    assert!(
        part.body.contains(r#"hx-trigger="every 1s""#),
        "{}",
        part.body
    );
    assert!(
        part.body
            .contains(r#"<progress id="import-bar" max="3000" value="0">"#),
        "{}",
        part.body
    );

    // Reached by a boosted form (the run's answer, followed by htmx), it is the whole page.
    let whole = console
        .get_with(&progress, &[("HX-Request", "true"), ("HX-Boosted", "true")])
        .await;
    assert!(whole.body.contains("<html"), "{}", whole.body);
    hold.commit().await.unwrap();
    let page = finished(&mut console, &progress).await;
    assert!(
        !page.body.contains("hx-trigger"),
        "a finished import asks no more: {}",
        page.body
    );
    assert_total(&page, "Created", 3000);
    assert_eq!(employee_count(&app, &admin).await, 3000);

    // The recorded steps: the last says every row; the file's bytes are let go.
    let id: uuid::Uuid = progress
        .trim_start_matches("/app/import/")
        .trim_end_matches("/progress")
        .parse()
        .unwrap();
    let row = db
        .query_one(
            "SELECT state, rows_done, rows_total, octet_length(bytes) AS kept
             FROM console_imports WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>("state"), "done");
    assert_eq!(row.get::<_, i32>("rows_done"), 3000);
    assert_eq!(row.get::<_, i32>("rows_total"), 3000);
    assert_eq!(row.get::<_, i32>("kept"), 0);

    // Its turn now: the other file imports.
    let page = console.post_form(&format!("{other}/run"), &mapping).await;
    page.assert_status(303);
    let page = finished(&mut console, page.location().unwrap()).await;
    assert_total(&page, "Created", 1);
    assert_eq!(employee_count(&app, &admin).await, 3001);
}

#[tokio::test]
async fn a_refused_import_says_why_on_its_progress_page_and_writes_nothing() {
    let app = spawn_app().await;
    let admin = app.signup("Refused Co").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    // Three new employees on the free plan (two at most).
    let csv =
        "full_name,email\nA One,a1@example.com\nB Two,b2@example.com\nC Three,c3@example.com\n";
    let path = uploaded(&mut console, csv).await;
    let mapping = [("col0", "full_name"), ("col1", "email")];
    let page = console.post_form(&format!("{path}/run"), &mapping).await;
    page.assert_status(303);
    let progress = page.location().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let page = loop {
        let page = console.get(&progress).await;
        page.assert_status(200);
        if !page.body.contains("Importing employees") {
            break page;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", page.body);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        page.body.contains("The import did not run"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("plan allows 2 employees"),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"role="alert""#));
    assert_eq!(employee_count(&app, &admin).await, 0);
    // The file is still there, to map again.
    console.get(&path).await.assert_status(200);
}

#[tokio::test]
async fn a_bad_file_and_the_plan_limit_are_shown_clearly() {
    let app = spawn_app().await;
    let admin = app.signup("Small Plan").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    let page = upload(&mut console, "").await;
    page.assert_status(422);
    assert!(page.body.contains(r#"id="f-file-error""#), "{}", page.body);

    // Three new employees on the free plan (two at most).
    let csv =
        "full_name,email\nA One,a1@example.com\nB Two,b2@example.com\nC Three,c3@example.com\n";
    let path = uploaded(&mut console, csv).await;
    let mapping = [("col0", "full_name"), ("col1", "email")];
    let page = console
        .post_form(&format!("{path}/preview"), &mapping)
        .await;
    page.assert_status(402);
    assert!(
        page.body.contains("plan allows 2 employees"),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"role="alert""#));

    // Two columns mapped to one field.
    let mapping = [("col0", "full_name"), ("col1", "full_name")];
    let page = console
        .post_form(&format!("{path}/preview"), &mapping)
        .await;
    page.assert_status(422);
    assert!(page.body.contains("twice"), "{}", page.body);
}

#[tokio::test]
async fn another_companys_import_is_not_found_and_employees_cannot_import() {
    let app = spawn_app().await;
    let admin = app.signup("Owner Co").await;
    let other = app.signup("Other Co").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let path = uploaded(&mut console, &csv_file()).await;

    let mut stranger = ConsoleClient::signed_in(&app, &other.email, ADMIN_PASSWORD).await;
    stranger.get(&path).await.assert_status(404);
    stranger
        .post_form(&format!("{path}/preview"), &MAPPING)
        .await
        .assert_status(404);
    stranger
        .post_form(&format!("{path}/run"), &MAPPING)
        .await
        .assert_status(404);
    stranger
        .get(&format!("{path}/progress"))
        .await
        .assert_status(404);
    stranger
        .get("/app/import/not-a-uuid")
        .await
        .assert_status(404);
    assert_eq!(employee_count(&app, &admin).await, 0);

    let employee = app.add_user(&admin, "employee", None).await;
    let mut console = ConsoleClient::signed_in(&app, &employee.email, TEAMMATE_PASSWORD).await;
    console.get("/app/import").await.assert_status(403);
    console.get(&path).await.assert_status(403);
}
