//! Required fields cannot be cleared: `null` for one is a 422 naming it, never silently
//! ignored; an upload form without its `file` is a 422 too.

use crate::helpers::{self, spawn_app};
use serde_json::json;

#[tokio::test]
async fn null_for_an_employees_full_name_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.signup("Null Co").await;
    let employee = app.add_employee(&admin, "Jane Null").await;
    let path = format!("/api/employees/{}", helpers::uuid_of(&employee));

    let resp = app
        .put(
            &path,
            Some(&admin.token),
            json!({"full_name": null, "job_title": "Manager"}),
        )
        .await;
    resp.assert_error(422, "validation_error");
    let detail = resp.body["detail"].as_str().unwrap();
    assert!(detail.contains("full_name"), "{detail}");

    let now = app.get(&path, Some(&admin.token)).await;
    now.assert_status(200);
    assert_eq!(now.body["full_name"], "Jane Null");
    assert_eq!(now.body["job_title"], "Engineer");

    // Left out, it is kept; given, it changes.
    let resp = app
        .put(&path, Some(&admin.token), json!({"job_title": "Manager"}))
        .await;
    resp.assert_status(200);
    assert_eq!(resp.body["full_name"], "Jane Null");
    assert_eq!(resp.body["job_title"], "Manager");
    let resp = app
        .put(&path, Some(&admin.token), json!({"full_name": "Jane Set"}))
        .await;
    resp.assert_status(200);
    assert_eq!(resp.body["full_name"], "Jane Set");
}

#[tokio::test]
async fn null_for_a_companys_name_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.signup("Named Co").await;
    let path = format!("/api/company/{}", admin.company_id);

    let resp = app
        .put(
            &path,
            Some(&admin.token),
            json!({"name": null, "domain": "named.example"}),
        )
        .await;
    resp.assert_error(422, "validation_error");
    let detail = resp.body["detail"].as_str().unwrap();
    assert!(detail.contains("name"), "{detail}");

    let now = app.get(&path, Some(&admin.token)).await;
    now.assert_status(200);
    assert_eq!(now.body["name"], "Named Co");
    assert!(now.body["domain"].is_null(), "{}", now.body);
}

#[tokio::test]
async fn an_upload_form_without_its_file_is_a_422() {
    let app = spawn_app().await;
    let admin = app.signup("Formless Co").await;
    let employee = app.add_employee(&admin, "Jane Formless").await;
    let employee_id = helpers::uuid_of(&employee);
    let photo = format!("{}/api/employees/{employee_id}/photo", app.address);
    let logo = format!("{}/api/company/{}/logo", app.address, admin.company_id);
    let forms = [
        "--b--\r\n",
        "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhello\r\n--b--\r\n",
    ];
    for url in [&photo, &logo] {
        for body in forms {
            let resp = app
                .client
                .put(url)
                .bearer_auth(&admin.token)
                .header("content-type", "multipart/form-data; boundary=b")
                .body(body)
                .send()
                .await
                .unwrap();
            let resp = helpers::TestApp::read(resp).await;
            resp.assert_error(422, "invalid_upload");
            let detail = resp.body["detail"].as_str().unwrap();
            assert!(detail.contains("file"), "{url}: {detail}");
        }
    }
}
