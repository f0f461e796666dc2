//! The console's CSV import: upload, column mapping, preview (a dry run), import, re-import by
//! email, the plan's limit, and the wall between companies.

use crate::{
    console_client::{ConsoleClient, Page},
    helpers::{ADMIN_PASSWORD, TEAMMATE_PASSWORD, TestApp, spawn_app},
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
    resp.body.as_array().unwrap().len()
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
    let done = page.location().unwrap().to_owned();
    assert!(
        done.contains("created=2") && done.contains("errors=1"),
        "{done}"
    );
    let page = console.get(&done).await;
    page.assert_status(200);
    assert!(page.body.contains("Import finished"));
    assert_eq!(employee_count(&app, &admin).await, 2);
    // The file is gone once imported.
    console.get(&path).await.assert_status(404);

    // The same file again: matched by email, nothing new.
    let path = uploaded(&mut console, &csv_file()).await;
    let page = console.post_form(&format!("{path}/run"), &MAPPING).await;
    page.assert_status(303);
    let done = page.location().unwrap();
    assert!(
        done.contains("created=0") && done.contains("unchanged=2"),
        "{done}"
    );
    assert_eq!(employee_count(&app, &admin).await, 2);
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
        .get("/app/import/not-a-uuid")
        .await
        .assert_status(404);
    assert_eq!(employee_count(&app, &admin).await, 0);

    let employee = app.add_user(&admin, "employee", None).await;
    let mut console = ConsoleClient::signed_in(&app, &employee.email, TEAMMATE_PASSWORD).await;
    console.get("/app/import").await.assert_status(403);
    console.get(&path).await.assert_status(403);
}
