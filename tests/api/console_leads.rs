//! The console's Leads pages: the list with its filters and pages, a lead's page, its vCard, the
//! erasure confirmed without JavaScript, the CSV export, an employee's own leads, and the lead
//! settings form.

use serde_json::{Value, json};

use crate::{
    console_client::ConsoleClient,
    helpers::{
        ADMIN_PASSWORD, Card, TEAMMATE_PASSWORD, company_with_card, scalar, spawn_app_with,
        superuser,
    },
    leads::{NO_MIN_FILL, app, leave},
};

/// The lead ids of the list's rows, in order.
fn names_on(body: &str) -> Vec<String> {
    body.split("href=\"/app/leads/")
        .skip(1)
        .filter_map(|rest| {
            let (id, rest) = rest.split_once('"')?;
            uuid::Uuid::parse_str(id).ok()?;
            let start = rest.find('>')? + 1;
            Some(rest[start..].split('<').next()?.to_owned())
        })
        .collect()
}

/// The records of a CSV export, after its header.
fn records(csv: &str) -> Vec<csv::StringRecord> {
    csv::Reader::from_reader(csv.as_bytes())
        .records()
        .collect::<Result<_, _>>()
        .expect("the export is CSV")
}

#[tokio::test]
async fn admins_list_search_page_read_and_export_the_leads() {
    // 52 leads from one address: more than its hourly limit would take.
    let app = spawn_app_with(&[NO_MIN_FILL, ("LEADS_PER_ADDRESS_PER_HOUR", "1000")]).await;
    let (admin, card) = company_with_card(&app, "Console Leads").await;
    let other = Card::of(&app.add_employee(&admin, "Otto Other").await);
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    let empty = console.get("/app/leads").await;
    empty.assert_status(200);
    assert!(empty.body.contains("No leads yet"), "{}", empty.body);
    assert!(
        empty
            .body
            .contains(r#"href="/app/leads" aria-current="page""#)
    );

    let vera = leave(
        &app,
        &card,
        json!({"name": "Vera <b>Visitor</b>", "email": "vera@visitor.example",
               "company": "Visitors Ltd", "job_title": "Buyer", "note": "Call me\nafter 5"}),
    )
    .await;
    vera.assert_status(201);
    let vera = vera.id();
    for n in 0..51 {
        leave(
            &app,
            &other,
            json!({"name": format!("Bulk {n:02}"), "phone": "+1 202 555 0100"}),
        )
        .await
        .assert_status(201);
    }

    // Newest first, 50 a page, the card named, markup shown as text.
    let first = console.get("/app/leads").await;
    first.assert_status(200);
    let names = names_on(&first.body);
    assert_eq!(names.len(), 50, "{names:?}");
    assert_eq!(names[0], "Bulk 50");
    assert!(first.body.contains("Otto Other"));
    let older = first
        .body
        .split("href=\"/app/leads?cursor=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to older leads");
    let second = console.get(&format!("/app/leads?cursor={older}")).await;
    second.assert_status(200);
    assert_eq!(
        names_on(&second.body),
        ["Bulk 00", "Vera &lt;b&gt;Visitor&lt;/b&gt;"]
    );

    // Search and dates; a refused filter is said next to its field.
    let found = console.get("/app/leads?q=VISITORS+ltd").await;
    assert_eq!(names_on(&found.body), ["Vera &lt;b&gt;Visitor&lt;/b&gt;"]);
    assert!(found.body.contains(r#"value="VISITORS ltd""#));
    let none = console.get("/app/leads?to=2000-01-01").await;
    none.assert_status(200);
    assert!(none.body.contains("No lead matches these filters"));
    let bad = console.get("/app/leads?from=yesterday-ish").await;
    bad.assert_status(422);
    assert!(bad.body.contains(r#"aria-invalid="true""#), "{}", bad.body);
    let stale = console.get("/app/leads?cursor=nonsense").await;
    stale.assert_status(422);
    assert!(stale.body.contains("not a cursor"), "{}", stale.body);

    // The export follows the filters.
    let csv = console.get("/app/leads/export.csv?q=visitors").await;
    csv.assert_status(200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(
        csv.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment; filename=\"leads-")),
        "{:?}",
        csv.header("content-disposition")
    );
    assert!(csv.body.starts_with("created_at,lead_id,"), "{}", csv.body);
    let rows = records(&csv.body);
    assert_eq!(rows.len(), 1, "{}", csv.body);
    assert_eq!(&rows[0][5], "vera@visitor.example");
    assert_eq!(&rows[0][9], "Call me\nafter 5");
    let all = console.get("/app/leads/export.csv").await;
    assert_eq!(records(&all.body).len(), 52);

    // A lead's page holds everything it has, and its vCard.
    let page = console.get(&format!("/app/leads/{vera}")).await;
    page.assert_status(200);
    for text in [
        "Vera &lt;b&gt;Visitor&lt;/b&gt;",
        r#"href="mailto:vera@visitor.example""#,
        "Visitors Ltd",
        "Buyer",
        "Call me\nafter 5",
        "Jane Card",
        "Not asked",
        &format!(r#"href="/app/leads/{vera}/delete""#),
    ] {
        assert!(
            page.body.contains(text),
            "{text} missing from {}",
            page.body
        );
    }
    let vcard = console.get(&format!("/app/leads/{vera}/vcard")).await;
    vcard.assert_status(200);
    assert_eq!(
        vcard.header("content-type"),
        Some("text/vcard; charset=utf-8")
    );
    assert!(vcard.body.starts_with("BEGIN:VCARD\r\nVERSION:3.0\r\n"));
    assert!(
        vcard
            .body
            .contains("EMAIL;TYPE=INTERNET,WORK:vera@visitor.example")
    );

    // Not a lead, another company's lead: the same 404.
    console
        .get("/app/leads/not-a-uuid")
        .await
        .assert_status(404);
    let (stranger, stranger_card) = company_with_card(&app, "Strangers").await;
    let theirs = leave(
        &app,
        &stranger_card,
        json!({"name": "Theirs", "email": "t@x.example"}),
    )
    .await
    .id();
    console
        .get(&format!("/app/leads/{theirs}"))
        .await
        .assert_status(404);
    console
        .post_form(&format!("/app/leads/{theirs}/delete"), &[])
        .await
        .assert_status(404);
    let mut theirs_console = ConsoleClient::signed_in(&app, &stranger.email, ADMIN_PASSWORD).await;
    theirs_console
        .get(&format!("/app/leads/{theirs}"))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn an_admin_erases_a_lead_after_a_confirmation_page() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Console Erasure").await;
    let gone = leave(
        &app,
        &card,
        json!({"name": "Gone Soon", "email": "gone@v.example"}),
    )
    .await
    .id();
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    let confirm = console.get(&format!("/app/leads/{gone}/delete")).await;
    confirm.assert_status(200);
    assert!(confirm.body.contains("cannot be undone"));
    assert!(
        confirm
            .body
            .contains(&format!(r#"action="/app/leads/{gone}/delete""#))
    );
    // A form from elsewhere (no token) erases nothing.
    let origin = console.origin();
    console
        .post_form_as(
            &format!("/app/leads/{gone}/delete"),
            &[],
            Some(&origin),
            None,
        )
        .await
        .assert_status(403);
    let owner = superuser(&app).await;
    let count = "SELECT count(*) FROM leads";
    assert_eq!(scalar(&owner, count, &[]).await, 1);

    let erased = console
        .post_form(&format!("/app/leads/{gone}/delete"), &[])
        .await;
    erased.assert_status(303);
    assert_eq!(erased.location(), Some("/app/leads?erased=1"));
    assert_eq!(scalar(&owner, count, &[]).await, 0);
    let list = console.get("/app/leads?erased=1").await;
    assert!(list.body.contains("The lead was erased"));
    console
        .get(&format!("/app/leads/{gone}"))
        .await
        .assert_status(404);
    let audit: i64 = scalar(
        &owner,
        "SELECT count(*) FROM audit_events WHERE action = 'lead.erased' AND company_id = $1",
        &[&admin.company_id],
    )
    .await;
    assert_eq!(audit, 1);
}

#[tokio::test]
async fn an_employee_sees_only_their_own_cards_leads_and_cannot_erase() {
    let app = app().await;
    let (admin, own) = company_with_card(&app, "Console Own").await;
    let theirs = Card::of(&app.add_employee(&admin, "Someone Else").await);
    let employee = app
        .add_user(&admin, "employee", Some(own.employee_id))
        .await;
    let mine = leave(&app, &own, json!({"name": "Mine", "email": "m@v.example"}))
        .await
        .id();
    let other = leave(
        &app,
        &theirs,
        json!({"name": "Theirs", "email": "t@v.example"}),
    )
    .await
    .id();
    let mut console = ConsoleClient::signed_in(&app, &employee.email, TEAMMATE_PASSWORD).await;

    let home = console.get("/app/me").await;
    assert!(home.body.contains(r#"href="/app/leads""#), "{}", home.body);
    let list = console.get("/app/leads").await;
    list.assert_status(200);
    assert_eq!(names_on(&list.body), ["Mine"]);
    assert!(!list.body.contains("Lead settings"));
    let page = console.get(&format!("/app/leads/{mine}")).await;
    page.assert_status(200);
    assert!(!page.body.contains("Erase this lead"));
    console
        .get(&format!("/app/leads/{other}"))
        .await
        .assert_status(404);
    let csv = console.get("/app/leads/export.csv").await;
    assert!(csv.body.contains("m@v.example") && !csv.body.contains("t@v.example"));
    console
        .get(&format!("/app/leads/{mine}/delete"))
        .await
        .assert_status(403);
    console
        .post_form(&format!("/app/leads/{mine}/delete"), &[])
        .await
        .assert_status(403);
    console.get("/app/leads/settings").await.assert_status(403);
    console
        .post_form("/app/leads/settings", &[("lead_capture_enabled", "on")])
        .await
        .assert_status(403);
    let owner = superuser(&app).await;
    assert_eq!(scalar(&owner, "SELECT count(*) FROM leads", &[]).await, 2);
}

async fn company_of(app: &crate::helpers::TestApp, admin: &crate::helpers::Session) -> Value {
    let resp = app
        .get(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    resp.assert_status(200);
    resp.body
}

#[tokio::test]
async fn the_lead_settings_form_sets_the_companys_five_fields() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Console Settings").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    let form = console.get("/app/leads/settings").await;
    form.assert_status(200);
    assert!(
        form.body
            .contains(r#"name="lead_capture_enabled" value="on" checked"#),
        "{}",
        form.body
    );
    assert!(
        form.body.contains("Console Settings"),
        "the default consent names the company"
    );

    // Every error at once, next to its field; nothing saved.
    let refused = console
        .post_form(
            "/app/leads/settings",
            &[
                ("lead_capture_enabled", "on"),
                ("lead_consent_text", "ok"),
                ("privacy_policy_url", "javascript:alert(1)"),
                ("lead_retention_days", "0"),
            ],
        )
        .await;
    refused.assert_status(422);
    assert!(refused.body.contains(r#"id="f-privacy_policy_url-error""#));
    assert!(refused.body.contains(r#"id="f-lead_retention_days-error""#));
    assert_eq!(
        company_of(&app, &admin).await["lead_retention_days"],
        Value::Null
    );

    let saved = console
        .post_form(
            "/app/leads/settings",
            &[
                ("lead_consent_required", "on"),
                (
                    "lead_consent_text",
                    "Yes, Console Settings may write to me.",
                ),
                ("privacy_policy_url", "https://example.com/privacy"),
                ("lead_retention_days", "90"),
            ],
        )
        .await;
    saved.assert_status(303);
    assert_eq!(saved.location(), Some("/app/leads/settings?saved=1"));
    let company = company_of(&app, &admin).await;
    assert_eq!(
        company["lead_capture_enabled"], false,
        "an unticked box is off"
    );
    assert_eq!(company["lead_consent_required"], true);
    assert_eq!(
        company["lead_consent_text"],
        "Yes, Console Settings may write to me."
    );
    assert_eq!(company["privacy_policy_url"], "https://example.com/privacy");
    assert_eq!(company["lead_retention_days"], 90);
    let shown = console.get("/app/leads/settings?saved=1").await;
    assert!(shown.body.contains("Lead settings saved."));
    assert_eq!(
        shown.input_value("lead_retention_days").as_deref(),
        Some("90")
    );
    // Capture off: the card has no form any more.
    let page = crate::leads::page(&app, &card).await;
    assert!(!page.contains("name=\"started\""), "{page}");

    // Empty fields clear, the switch comes back on.
    console
        .post_form(
            "/app/leads/settings",
            &[
                ("lead_capture_enabled", "on"),
                ("lead_consent_text", ""),
                ("privacy_policy_url", ""),
                ("lead_retention_days", ""),
            ],
        )
        .await
        .assert_status(303);
    let company = company_of(&app, &admin).await;
    assert_eq!(company["lead_capture_enabled"], true);
    assert_eq!(company["lead_consent_required"], false);
    assert_eq!(company["lead_consent_text"], Value::Null);
    assert_eq!(company["privacy_policy_url"], Value::Null);
    assert_eq!(company["lead_retention_days"], Value::Null);
}
