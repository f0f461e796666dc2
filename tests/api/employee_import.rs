//! `POST /api/company/{id}/employees/import` and `callingcard import-employees`: CSV and JSON
//! rows, matched by email so that a re-import updates rather than duplicates, checked row by row
//! as a single employee is, within the plan's limit as a whole.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Response, Session, TestApp, scalar, spawn_app, superuser, superuser_url};

const ENTERPRISE: &str = "enterprise";

async fn import_csv(app: &TestApp, admin: &Session, query: &str, csv: &[u8]) -> Response {
    let req = app
        .client
        .post(format!(
            "{}/api/company/{}/employees/import{query}",
            app.address, admin.company_id
        ))
        .bearer_auth(&admin.token)
        .header("content-type", "text/csv; charset=utf-8")
        .body(csv.to_vec());
    TestApp::read(req.send().await.expect("sending the import")).await
}

async fn import_json(app: &TestApp, admin: &Session, query: &str, rows: Value) -> Response {
    app.post(
        &format!("/api/company/{}/employees/import{query}", admin.company_id),
        Some(&admin.token),
        json!({ "rows": rows }),
    )
    .await
}

/// A company on the unlimited plan.
async fn enterprise_company(app: &TestApp, name: &str) -> Session {
    let admin = app.signup(name).await;
    let root = app.superadmin().await;
    app.set_plan(&root, admin.company_id, ENTERPRISE).await;
    admin
}

async fn employee_count(app: &TestApp, company_id: Uuid) -> i64 {
    let db = superuser(app).await;
    scalar(
        &db,
        "SELECT count(*) FROM employees WHERE company_id = $1",
        &[&company_id],
    )
    .await
}

fn outcomes(report: &Value) -> Vec<String> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_owned())
        .collect()
}

fn totals(report: &Value) -> [u64; 4] {
    let t = &report["totals"];
    ["created", "updated", "unchanged", "errors"].map(|k| t[k].as_u64().unwrap())
}

const TEAM: &str = "full_name,email,job_title,phone,social_links.linkedin,notes\n\
                    Jane Smith,jane@example.com,CTO,+1 555 010 0001,https://www.linkedin.com/in/jane,x\n\
                    \"Doe, John\",John@Example.com,Engineer,,,y\n\
                    No Email,,Intern,,,z\n";

#[tokio::test]
async fn a_csv_file_imports_and_a_reimport_updates_instead_of_duplicating() {
    let app = spawn_app().await;
    let admin = enterprise_company(&app, "Import Csv").await;
    let resp = import_csv(&app, &admin, "", TEAM.as_bytes()).await;
    resp.assert_status(200);
    let report = &resp.body;
    assert_eq!(report["dry_run"], false);
    assert_eq!(outcomes(report), ["created", "created", "created"]);
    assert_eq!(report["ignored_columns"], json!(["notes"]));
    assert_eq!(report["rows"][0]["row"], 1);
    let jane_id = report["rows"][0]["employee_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let jane = app
        .get(&format!("/api/employees/{jane_id}"), Some(&admin.token))
        .await;
    jane.assert_status(200);
    assert_eq!(jane.body["job_title"], "CTO");
    assert_eq!(
        jane.body["social_links"]["linkedin"],
        "https://www.linkedin.com/in/jane"
    );
    assert!(
        jane.body["public_slug"]
            .as_str()
            .unwrap()
            .starts_with("jane-smith-")
    );

    // The same file again: matched by email (John's in another case), nothing duplicated; the
    // row without an email is created again, as documented.
    let again = import_csv(&app, &admin, "", TEAM.as_bytes()).await;
    again.assert_status(200);
    assert_eq!(outcomes(&again.body), ["unchanged", "unchanged", "created"]);
    assert_eq!(again.body["rows"][0]["employee_id"], jane_id.as_str());
    assert_eq!(employee_count(&app, admin.company_id).await, 4);

    // A changed title updates; an empty cell clears the field.
    let changed = TEAM.replace("CTO,+1 555 010 0001", "CEO,");
    let updated = import_csv(&app, &admin, "", changed.as_bytes()).await;
    assert_eq!(outcomes(&updated.body)[0], "updated");
    let jane = app
        .get(&format!("/api/employees/{jane_id}"), Some(&admin.token))
        .await;
    assert_eq!(jane.body["job_title"], "CEO");
    assert_eq!(jane.body["phone"], Value::Null);
    assert_eq!(employee_count(&app, admin.company_id).await, 5);

    // One event with the counts, in the company's trail.
    let db = superuser(&app).await;
    let events = scalar(
        &db,
        "SELECT count(*) FROM audit_events WHERE company_id = $1 AND action = 'employee.imported'",
        &[&admin.company_id],
    )
    .await;
    assert_eq!(events, 3);
}

#[tokio::test]
async fn json_rows_import_with_row_errors_beside_the_imported_rows() {
    let app = spawn_app().await;
    let admin = enterprise_company(&app, "Import Json").await;
    let rows = json!([
        {"full_name": "Ana Lima", "email": "ana@example.com", "social_links": {"github": "https://github.com/ana"}},
        {"full_name": "Bad Mail", "email": "not-an-email"},
        {"full_name": "Nul\u{0}Name", "email": "nul@example.com"},
        {"full_name": "x".repeat(201)},
        {"full_name": "Bell\u{7}", "phone": "call me"},
        {"email": "nobody@example.com"},
        {"full_name": "Ben Ode", "bio": "Line one\nLine two"}
    ]);
    let resp = import_json(&app, &admin, "", rows).await;
    resp.assert_status(200);
    let report = &resp.body;
    assert_eq!(
        outcomes(report),
        [
            "created", "error", "error", "error", "error", "error", "created"
        ]
    );
    assert_eq!(totals(report), [2, 0, 0, 5]);
    let problem = |row: usize, i: usize| report["rows"][row]["problems"][i].clone();
    assert_eq!(problem(1, 0)["field"], "email");
    assert_eq!(problem(1, 0)["code"], "validation_error");
    assert_eq!(problem(2, 0)["field"], "full_name");
    assert!(problem(2, 0)["detail"].as_str().unwrap().contains("NUL"));
    assert!(problem(3, 0)["detail"].as_str().unwrap().contains("200"));
    // Every problem of a row, not only the first.
    assert_eq!(report["rows"][4]["problems"].as_array().unwrap().len(), 2);
    // No match and no name: nothing to create.
    assert_eq!(problem(5, 0)["field"], "full_name");
    assert_eq!(report["rows"][1]["employee_id"], Value::Null);
    assert_eq!(employee_count(&app, admin.company_id).await, 2);
}

#[tokio::test]
async fn a_dry_run_reports_and_writes_nothing() {
    let app = spawn_app().await;
    let admin = enterprise_company(&app, "Import Dry").await;
    let resp = import_csv(&app, &admin, "?dry_run=true", TEAM.as_bytes()).await;
    resp.assert_status(200);
    assert_eq!(resp.body["dry_run"], true);
    assert_eq!(outcomes(&resp.body), ["created", "created", "created"]);
    assert_eq!(resp.body["rows"][0]["employee_id"], Value::Null);
    assert_eq!(employee_count(&app, admin.company_id).await, 0);
    let db = superuser(&app).await;
    let events = scalar(
        &db,
        "SELECT count(*) FROM audit_events WHERE company_id = $1 AND action = 'employee.imported'",
        &[&admin.company_id],
    )
    .await;
    assert_eq!(events, 0);
}

#[tokio::test]
async fn the_plan_limit_applies_to_the_import_as_a_whole() {
    let app = spawn_app().await;
    // The free plan allows 2 employees.
    let admin = app.signup("Import Free").await;
    app.add_employee(&admin, "Already Here").await;
    let two = "full_name,email\nA One,a1@example.com\nB Two,b2@example.com\n";
    for query in ["", "?dry_run=true"] {
        import_csv(&app, &admin, query, two.as_bytes())
            .await
            .assert_error(402, "plan_limit_reached");
    }
    assert_eq!(employee_count(&app, admin.company_id).await, 1);
    // An update of the one already there does not count; one creation still fits.
    let fits = "full_name,email\nA One,a1@example.com\nAlready Here,someone@example.com\n";
    let resp = import_csv(&app, &admin, "", fits.as_bytes()).await;
    resp.assert_status(200);
    assert_eq!(outcomes(&resp.body), ["created", "unchanged"]);
    assert_eq!(employee_count(&app, admin.company_id).await, 2);
}

#[tokio::test]
async fn a_second_row_with_the_same_email_is_an_error() {
    let app = spawn_app().await;
    let admin = enterprise_company(&app, "Import Dupes").await;
    let file = "full_name,email\nFirst,same@example.com\nSecond,SAME@example.com\n";
    let resp = import_csv(&app, &admin, "", file.as_bytes()).await;
    resp.assert_status(200);
    assert_eq!(outcomes(&resp.body), ["created", "error"]);
    let problem = &resp.body["rows"][1]["problems"][0];
    assert_eq!(problem["code"], "duplicate_in_file");
    assert_eq!(problem["field"], "email");
    assert_eq!(employee_count(&app, admin.company_id).await, 1);
}

#[tokio::test]
async fn unreadable_files_are_refused_and_unreadable_rows_are_row_errors() {
    let app = spawn_app().await;
    let admin = enterprise_company(&app, "Import Bad").await;
    for file in [
        &b""[..],
        b"Jane Smith,jane@example.com\n",
        b"email,email\n",
        b"full_name,\xFF\n",
    ] {
        import_csv(&app, &admin, "", file)
            .await
            .assert_error(422, "invalid_csv");
    }
    let many = format!("full_name\n{}", "Someone\n".repeat(10_001));
    import_csv(&app, &admin, "", many.as_bytes())
        .await
        .assert_error(422, "too_many_rows");
    // A NUL byte, a control character, bytes that are not UTF-8, a wrong number of fields, a
    // quote left open: each only its own row.
    let mut file = b"full_name,email,bio\n".to_vec();
    file.extend_from_slice(b"Nul\x00Byte,nul@example.com,\n");
    file.extend_from_slice(b"Esc\x1bape,esc@example.com,\n");
    file.extend_from_slice(b"Bad \xFF Bytes,bytes@example.com,\n");
    file.extend_from_slice(b"Too,many@example.com,fields,here\n");
    file.extend_from_slice(b"Good Row,good@example.com,\"Two\nlines\"\n");
    file.extend_from_slice(b"\"Open quote,open@example.com,\n");
    let resp = import_csv(&app, &admin, "", &file).await;
    resp.assert_status(200);
    assert_eq!(
        outcomes(&resp.body),
        ["error", "error", "error", "error", "created", "error"]
    );
    let code = |row: usize| resp.body["rows"][row]["problems"][0]["code"].clone();
    assert_eq!(code(2), "invalid_encoding");
    assert_eq!(code(3), "wrong_field_count");
    assert_eq!(employee_count(&app, admin.company_id).await, 1);
    // A body of another type.
    let req = app
        .client
        .post(format!(
            "{}/api/company/{}/employees/import",
            app.address, admin.company_id
        ))
        .bearer_auth(&admin.token)
        .header("content-type", "application/xml")
        .body("<rows/>");
    TestApp::read(req.send().await.unwrap())
        .await
        .assert_status(415);
}

#[tokio::test]
async fn only_admins_of_the_company_import() {
    let app = spawn_app().await;
    let admin = enterprise_company(&app, "Import Owners").await;
    let employee = app.add_user(&admin, "employee", None).await;
    import_csv(&app, &employee, "", TEAM.as_bytes())
        .await
        .assert_error(403, "forbidden");
    let other = app.signup("Import Strangers").await;
    let as_other = Session {
        company_id: admin.company_id,
        ..other
    };
    import_csv(&app, &as_other, "", TEAM.as_bytes())
        .await
        .assert_error(404, "not_found");
    assert_eq!(employee_count(&app, admin.company_id).await, 0);
}

/// The command, run as a child process against the app's database: a progress bar, a summary,
/// and exit status 1 when a row failed (the others imported).
#[tokio::test]
async fn the_import_command_imports_a_file_into_a_company_by_its_slug() {
    let app = spawn_app().await;
    let admin = enterprise_company(&app, "Import Command").await;
    let company = app
        .get(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    let slug = company.body["slug"].as_str().unwrap().to_owned();
    let dir = std::env::temp_dir().join(format!("import-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("team.csv");
    std::fs::write(&file, TEAM).unwrap();
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "full_name,email\nGood,good@example.com\nBad,not-an-email\n",
    )
    .unwrap();

    let run = async |file: &std::path::Path, extra: &[&str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_callingcard"))
            .arg("import-employees")
            .args(["--company", &slug])
            .arg(file)
            .args(extra)
            .env("DATABASE_URL", superuser_url(&app.dbname))
            .env("JWT_SECRET", crate::helpers::JWT_SECRET)
            .env("DATA_DIR", &dir)
            .env("RUST_LOG", "warn")
            .output()
            .await
            .expect("running callingcard import-employees")
    };
    let dry = run(&file, &["--dry-run"]).await;
    assert!(dry.status.success(), "{dry:?}");
    assert_eq!(employee_count(&app, admin.company_id).await, 0);

    let done = run(&file, &[]).await;
    assert!(done.status.success(), "{done:?}");
    let summary = String::from_utf8_lossy(&done.stdout);
    assert!(summary.contains("3 rows: 3 created"), "{summary}");
    assert_eq!(employee_count(&app, admin.company_id).await, 3);

    let failed = run(&bad, &[]).await;
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let summary = String::from_utf8_lossy(&failed.stdout);
    assert!(summary.contains("row 2: email:"), "{summary}");
    assert_eq!(employee_count(&app, admin.company_id).await, 4);

    let nobody = tokio::process::Command::new(env!("CARGO_BIN_EXE_callingcard"))
        .args(["import-employees", "--company", "no-such-company"])
        .arg(&file)
        .env("DATABASE_URL", superuser_url(&app.dbname))
        .env("JWT_SECRET", crate::helpers::JWT_SECRET)
        .env("DATA_DIR", &dir)
        .output()
        .await
        .unwrap();
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no-such-company"));
    let _ = std::fs::remove_dir_all(&dir);
}
