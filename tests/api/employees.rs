//! Employees, their cards, the plan limit, and who may edit what.

use crate::helpers::{self, PUBLIC_BASE_URL, spawn_app, uuid_of};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn create_read_update_delete() {
    let app = spawn_app().await;
    let admin = app.signup("Crud Corp").await;
    let created = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            json!({"full_name": "Jane Smith", "job_title": "CTO", "email": "jane@crud.example", "phone": "+1 555 010 0000",
                   "whatsapp": "+15550100000", "photo_url": "https://img.example/jane.jpg", "bio": "Builds things; likes, commas.",
                   "social_links": {"linkedin": "https://www.linkedin.com/in/jane", "site": "https://jane.example"}}),
        )
        .await;
    created.assert_status(201);
    let e = &created.body;
    let slug = e["public_slug"].as_str().unwrap();
    assert!(
        slug.starts_with("jane-smith-") && slug.len() == "jane-smith-".len() + 6,
        "{slug}"
    );
    assert_eq!(e["company_slug"], "crud-corp");
    assert_eq!(
        e["card_url"],
        format!("{PUBLIC_BASE_URL}/card/crud-corp/{slug}")
    );
    assert_eq!(
        e["social_links"]["linkedin"],
        "https://www.linkedin.com/in/jane"
    );
    assert_eq!(e["company_id"], admin.company_id.to_string());
    assert_eq!(e["created_at"], e["last_updated"]);
    let id = uuid_of(e);

    // The card row was created in the same transaction.
    let owner = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
    let card = owner
        .query_one(
            "SELECT url, qr_code, vcard_url FROM cards WHERE employee_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(card.get::<_, String>(0), format!("/card/crud-corp/{slug}"));
    assert_eq!(
        card.get::<_, String>(1),
        format!("/api/card/crud-corp/{slug}/qr.png")
    );
    assert_eq!(
        card.get::<_, String>(2),
        format!("/api/card/crud-corp/{slug}/vcard")
    );

    let got = app
        .get(&format!("/api/employees/{id}"), Some(&admin.token))
        .await;
    got.assert_status(200);
    assert_eq!(got.body, created.body);

    // Partial update: absent fields stay, null clears, the slug survives a rename.
    let updated = app
        .put(
            &format!("/api/employees/{id}"),
            Some(&admin.token),
            json!({"full_name": "Jane Doe", "bio": null, "social_links": {}}),
        )
        .await;
    updated.assert_status(200);
    assert_eq!(updated.body["full_name"], "Jane Doe");
    assert_eq!(updated.body["job_title"], "CTO");
    assert_eq!(updated.body["bio"], serde_json::Value::Null);
    assert_eq!(updated.body["social_links"], json!({}));
    assert_eq!(updated.body["public_slug"], slug);
    assert_ne!(updated.body["last_updated"], e["last_updated"]);

    app.delete(&format!("/api/employees/{id}"), Some(&admin.token))
        .await
        .assert_status(204);
    app.get(&format!("/api/employees/{id}"), Some(&admin.token))
        .await
        .assert_error(404, "not_found");
    app.delete(&format!("/api/employees/{id}"), Some(&admin.token))
        .await
        .assert_error(404, "not_found");
    let cards: i64 = owner
        .query_one("SELECT count(*) FROM cards", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(cards, 0);
}

#[tokio::test]
async fn list_is_paginated_with_a_total() {
    let app = spawn_app().await;
    let root = app.superadmin().await;
    let admin = app.signup("Paging Co").await;
    app.set_plan(&root, admin.company_id, "professional").await;
    for i in 0..5 {
        app.add_employee(&admin, &format!("Person {i}")).await;
    }
    let path = format!("/api/company/{}/employees", admin.company_id);
    let page = app
        .get(&format!("{path}?skip=1&limit=2"), Some(&admin.token))
        .await;
    page.assert_status(200);
    assert_eq!(page.headers["x-total-count"], "5");
    let names: Vec<&str> = page
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Person 1", "Person 2"]);
    let all = app.get(&path, Some(&admin.token)).await;
    assert_eq!(all.body.as_array().unwrap().len(), 5);
    assert!(
        all.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    // The list writes its rows itself: each is the same JSON as the employee's own GET, the
    // times included to the character.
    for listed in all.body.as_array().unwrap() {
        let one = app
            .get(
                &format!("/api/employees/{}", listed["id"].as_str().unwrap()),
                Some(&admin.token),
            )
            .await;
        assert_eq!(listed, &one.body);
    }
    let past_end = app
        .get(&format!("{path}?skip=50"), Some(&admin.token))
        .await;
    past_end.assert_status(200);
    assert_eq!(past_end.body, json!([]));
    assert_eq!(past_end.headers["x-total-count"], "5");
    for bad in ["limit=0", "limit=101", "limit=-1", "skip=-3", "limit=abc"] {
        app.get(&format!("{path}?{bad}"), Some(&admin.token))
            .await
            .assert_error(422, "invalid_parameter");
    }
}

#[tokio::test]
async fn plan_limit_is_enforced_even_under_concurrency() {
    let app = spawn_app().await;
    let admin = app.signup("Limit Co").await;
    let path = format!("/api/company/{}/employees", admin.company_id);
    // Ten concurrent creations on the free plan (2 employees): exactly two succeed.
    let attempts = (0..10).map(|i| {
        let (app, path, token) = (&app, &path, &admin.token);
        async move {
            app.post(
                path,
                Some(token),
                json!({"full_name": format!("Racer {i}")}),
            )
            .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 2);
    for r in results.iter().filter(|r| r.status != 201) {
        r.assert_error(402, "plan_limit_reached");
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("Free plan allows 2")
        );
    }
    let count = app.get(&path, Some(&admin.token)).await;
    count.assert_status(200);
    assert_eq!(count.headers["x-total-count"], "2");

    // Upgrading lifts the limit.
    let root = app.superadmin().await;
    app.set_plan(&root, admin.company_id, "professional").await;
    app.post(&path, Some(&admin.token), json!({"full_name": "Third"}))
        .await
        .assert_status(201);
    let sub = app
        .get("/api/subscriptions/current", Some(&admin.token))
        .await;
    assert_eq!(sub.body["plan"], "professional");
    assert_eq!(sub.body["employee_limit"], 50);
    assert_eq!(sub.body["employee_count"], 3);
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let admin = app.signup("Valid Co").await;
    let path = format!("/api/company/{}/employees", admin.company_id);
    let cases = [
        json!({}),
        json!({"full_name": ""}),
        json!({"full_name": "x".repeat(201)}),
        json!({"full_name": "A", "email": "nope"}),
        json!({"full_name": "A", "phone": "call me maybe"}),
        json!({"full_name": "A", "photo_url": "javascript:alert(1)"}),
        json!({"full_name": "A", "bio": "b".repeat(2001)}),
        json!({"full_name": "A", "social_links": {"x": "javascript:alert(1)"}}),
        json!({"full_name": "A", "social_links": {"x": 5}}),
        json!({"full_name": "A", "unknown_field": 1}),
        json!({"full_name": ["A"]}),
        json!([1, 2]),
    ];
    for body in cases {
        let resp = app.post(&path, Some(&admin.token), body.clone()).await;
        assert_eq!(resp.status, 422, "{body} → {}", resp.body);
        resp.assert_error(422, "validation_error");
    }
    let too_many: serde_json::Map<String, serde_json::Value> = (0..21)
        .map(|i| (format!("l{i}"), json!("https://x.example")))
        .collect();
    app.post(
        &path,
        Some(&admin.token),
        json!({"full_name": "A", "social_links": too_many}),
    )
    .await
    .assert_error(422, "validation_error");
    app.get(&path, Some(&admin.token)).await.assert_status(200);
    assert_eq!(
        app.get(&path, Some(&admin.token)).await.headers["x-total-count"],
        "0"
    );

    // A stored employee survives a bad update untouched.
    let e = app.add_employee(&admin, "Stays Same").await;
    let id = uuid_of(&e);
    app.put(
        &format!("/api/employees/{id}"),
        Some(&admin.token),
        json!({"full_name": null, "email": "bad"}),
    )
    .await
    .assert_error(422, "validation_error");
    app.put(
        &format!("/api/employees/{id}"),
        Some(&admin.token),
        json!({"full_name": "  "}),
    )
    .await
    .assert_error(422, "validation_error");
    assert_eq!(
        app.get(&format!("/api/employees/{id}"), Some(&admin.token))
            .await
            .body,
        e
    );

    app.get("/api/employees/not-a-uuid", Some(&admin.token))
        .await
        .assert_error(422, "invalid_parameter");
    app.get(
        &format!("/api/employees/{}", Uuid::new_v4()),
        Some(&admin.token),
    )
    .await
    .assert_error(404, "not_found");
}

#[tokio::test]
async fn employees_read_their_company_and_edit_only_their_own_record() {
    let app = spawn_app().await;
    let admin = app.signup("Team Co").await;
    let mine = app.add_employee(&admin, "Me Myself").await;
    let theirs = app.add_employee(&admin, "Colleague").await;
    let me = app.add_user(&admin, "employee", Some(uuid_of(&mine))).await;

    let list = app
        .get(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&me.token),
        )
        .await;
    list.assert_status(200);
    assert_eq!(list.body.as_array().unwrap().len(), 2);

    let edited = app
        .put(
            &format!("/api/employees/{}", uuid_of(&mine)),
            Some(&me.token),
            json!({"job_title": "Lead"}),
        )
        .await;
    edited.assert_status(200);
    assert_eq!(edited.body["job_title"], "Lead");
    app.put(
        &format!("/api/employees/{}", uuid_of(&theirs)),
        Some(&me.token),
        json!({"job_title": "Intern"}),
    )
    .await
    .assert_error(403, "forbidden");
    app.post(
        &format!("/api/company/{}/employees", admin.company_id),
        Some(&me.token),
        json!({"full_name": "New"}),
    )
    .await
    .assert_error(403, "forbidden");
    app.delete(
        &format!("/api/employees/{}", uuid_of(&theirs)),
        Some(&me.token),
    )
    .await
    .assert_error(403, "forbidden");
    assert_eq!(
        app.get(
            &format!("/api/employees/{}", uuid_of(&theirs)),
            Some(&admin.token)
        )
        .await
        .body,
        theirs
    );

    // Deleting the employee keeps the login, unlinked.
    app.delete(
        &format!("/api/employees/{}", uuid_of(&mine)),
        Some(&admin.token),
    )
    .await
    .assert_status(204);
    let me_now = app.get("/api/auth/me", Some(&me.token)).await;
    me_now.assert_status(200);
    assert_eq!(me_now.body["employee_id"], serde_json::Value::Null);
}

#[tokio::test]
async fn users_are_created_by_admins_and_linked_within_the_company() {
    let app = spawn_app().await;
    let admin = app.signup("Users Co").await;
    let other = app.signup("Elsewhere").await;
    let foreign_employee = app.add_employee(&other, "Not Yours").await;
    let path = format!("/api/company/{}/users", admin.company_id);

    let second_admin = app.add_user(&admin, "admin", None).await;
    let list = app.get(&path, Some(&second_admin.token)).await;
    list.assert_status(200);
    assert_eq!(list.headers["x-total-count"], "2");

    let body = |email: &str, role: &str, employee: Option<Uuid>| json!({"email": email, "password": "sturdy-pelican-ferns-31", "full_name": "U", "role": role, "employee_id": employee});
    app.post(
        &path,
        Some(&admin.token),
        body("dup@users.example", "employee", None),
    )
    .await
    .assert_status(201);
    app.post(
        &path,
        Some(&admin.token),
        body("DUP@users.example", "admin", None),
    )
    .await
    .assert_error(409, "email_taken");
    app.post(
        &path,
        Some(&admin.token),
        body("root@users.example", "superadmin", None),
    )
    .await
    .assert_error(422, "validation_error");
    // Another company's employee cannot be linked: the foreign key includes the company.
    app.post(
        &path,
        Some(&admin.token),
        body(
            "link@users.example",
            "employee",
            Some(uuid_of(&foreign_employee)),
        ),
    )
    .await
    .assert_error(422, "employee_not_found");
    app.post(
        &path,
        Some(&admin.token),
        body("link@users.example", "employee", Some(Uuid::new_v4())),
    )
    .await
    .assert_error(422, "employee_not_found");
    assert_eq!(
        app.get(&path, Some(&admin.token)).await.headers["x-total-count"],
        "3"
    );
}
