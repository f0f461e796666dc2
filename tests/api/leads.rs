//! Leads: visitors leave their contact on a card (JSON, or the card page's form), the spam
//! rules refuse what a person would not send, the employee hears of it by email (a real SMTP
//! server), and the company's lead settings. What members do with leads: `leads_members`.

use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};

use crate::helpers::{
    Card, Session, SmtpServer, TestApp, audit_events, company_with_card, scalar, spawn_app,
    spawn_app_with, spawn_app_with_smtp, superuser,
};

/// Most tests send a form back at once: no minimum time to fill (its own test has one).
pub(crate) const NO_MIN_FILL: (&str, &str) = ("LEAD_MIN_FILL_SECONDS", "0");

pub(crate) async fn app() -> TestApp {
    spawn_app_with(&[NO_MIN_FILL]).await
}

/// The start token of the card page's form, as a browser gets it.
pub(crate) async fn form_token(app: &TestApp, card: &Card) -> String {
    let html = page(app, card).await;
    let marker = "name=\"started\" value=\"";
    let start = html.find(marker).expect("the page has a lead form") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub(crate) async fn page(app: &TestApp, card: &Card) -> String {
    let resp = app.get(&card.page(), None).await;
    resp.assert_status(200);
    resp.body.as_str().unwrap().to_owned()
}

pub(crate) fn leads_path(card: &Card) -> String {
    format!("{}/leads", card.api())
}

/// `POST …/leads` as JSON, with the page's start token unless `body` has one.
pub(crate) async fn leave(app: &TestApp, card: &Card, mut body: Value) -> crate::helpers::Response {
    if body.get("started").is_none() {
        body["started"] = form_token(app, card).await.into();
    }
    app.post(&leads_path(card), None, body).await
}

/// `POST …/leads` as the page's form does, redirects not followed.
pub(crate) async fn send_form(
    app: &TestApp,
    card: &Card,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    client
        .post(format!("{}{}", app.address, leads_path(card)))
        .form(fields)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn list(app: &TestApp, session: &Session, query: &str) -> Value {
    let resp = app
        .get(
            &format!("/api/company/{}/leads{query}", session.company_id),
            Some(&session.token),
        )
        .await;
    resp.assert_status(200);
    resp.body
}

pub(crate) fn names(page: &Value) -> Vec<String> {
    page["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) async fn count_leads(app: &TestApp) -> i64 {
    scalar(&superuser(app).await, "SELECT count(*) FROM leads", &[]).await
}

pub(crate) async fn set_company(
    app: &TestApp,
    admin: &Session,
    body: Value,
) -> crate::helpers::Response {
    app.put(
        &format!("/api/company/{}", admin.company_id),
        Some(&admin.token),
        body,
    )
    .await
}

#[tokio::test]
async fn a_lead_by_json_is_stored_and_emailed_to_the_employee_and_the_card_to_the_visitor() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[NO_MIN_FILL]).await;
    let (admin, card) = company_with_card(&app, "Acme Leads").await;
    // A photo, which the vCard sent to the visitor must carry.
    let photo = image::RgbImage::from_pixel(64, 64, image::Rgb([200, 30, 90]));
    let mut png = std::io::Cursor::new(Vec::new());
    photo
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encoding a PNG");
    let uploaded = app
        .client
        .put(format!("{}{}", app.address, card.photo()))
        .bearer_auth(&admin.token)
        .header("Content-Type", "image/png")
        .body(png.into_inner())
        .send()
        .await
        .expect("uploading the photo");
    assert_eq!(uploaded.status(), 200, "{:?}", uploaded.text().await);
    let created = leave(
        &app,
        &card,
        json!({"name": "Vera Visitor", "email": "vera@visitor.example", "company": "Visitors Ltd",
               "job_title": "Buyer", "note": "Call me\nafter 5", "send_vcard": true}),
    )
    .await;
    created.assert_status(201);
    let id = created.id();
    assert_eq!(
        created.body.as_object().unwrap().len(),
        1,
        "{}",
        created.body
    );

    let lead = app
        .get(&format!("/api/leads/{id}"), Some(&admin.token))
        .await;
    lead.assert_status(200);
    assert_eq!(lead.body["name"], "Vera Visitor");
    assert_eq!(lead.body["employee_id"], card.employee_id.to_string());
    assert_eq!(lead.body["employee_name"], "Jane Card");
    assert_eq!(lead.body["note"], "Call me\nafter 5");
    assert_eq!(lead.body["vcard_requested"], true);
    assert_eq!(lead.body["consent_given"], false);

    // The employee's card has an email (`add_employee` gives one): the lead goes there.
    let to_employee = smtp.wait_for_message_to("someone@example.com").await;
    assert!(
        to_employee.subject.contains("Vera Visitor"),
        "{to_employee:?}"
    );
    assert!(to_employee.text.contains("Email: vera@visitor.example"));
    assert!(to_employee.text.contains("Company: Visitors Ltd"));
    assert!(to_employee.attachments.is_empty());
    // And the visitor gets the card: its vCard attached, the same as the card's own download,
    // and the link to it.
    let to_visitor = smtp.wait_for_message_to("vera@visitor.example").await;
    assert!(to_visitor.subject.contains("Jane Card"), "{to_visitor:?}");
    let vcard = format!("{}{}", crate::helpers::PUBLIC_BASE_URL, card.vcard());
    assert!(to_visitor.text.contains(&vcard), "{}", to_visitor.text);
    assert!(to_visitor.html.contains(&vcard));
    let [attached] = to_visitor.attachments.as_slice() else {
        panic!("one file attached: {:?}", to_visitor.attachments);
    };
    assert_eq!(attached.mime_type, "text/vcard");
    assert_eq!(attached.file_name, "Jane_Card.vcf");
    let download = app.get(&card.vcard(), None).await;
    download.assert_status(200);
    assert_eq!(attached.body, download.body.as_str().unwrap());
    assert!(attached.body.starts_with("BEGIN:VCARD\r\nVERSION:3.0\r\n"));
    assert!(
        attached.body.contains("\r\nPHOTO;ENCODING=b;TYPE=JPEG:"),
        "{}",
        attached.body
    );
}

#[tokio::test]
async fn a_card_without_an_email_sends_the_lead_to_its_linked_login() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[NO_MIN_FILL]).await;
    let admin = app.signup("Acme Logins").await;
    let employee = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            json!({"full_name": "Nora No-Email"}),
        )
        .await;
    employee.assert_status(201);
    let card = Card::of(&employee.body);
    let login = app
        .add_user(&admin, "employee", Some(card.employee_id))
        .await;
    leave(
        &app,
        &card,
        json!({"name": "Pat", "phone": "+1 555 010 0000"}),
    )
    .await
    .assert_status(201);
    let email = smtp.wait_for_message_to(&login.email).await;
    assert!(
        email.text.contains("Phone: +1 555 010 0000"),
        "{}",
        email.text
    );
    // Without `send_vcard`, no card went out (the visitor left no address anyway).
    let cards = smtp
        .messages()
        .into_iter()
        .filter(|m| m.subject.contains("contact card"))
        .count();
    assert_eq!(cards, 0);
}

#[tokio::test]
async fn the_page_form_posts_without_javascript_and_lands_on_the_thank_you_state() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Acme Forms").await;
    let resp = app.get(&card.page(), None).await;
    let csp = resp.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'self'"), "{csp}");
    let html = resp.body.as_str().unwrap();
    for part in [
        "Share your contact",
        &format!("action=\"{}\"", leads_path(&card)),
        "for=\"lead-name\"",
        "name=\"name\" type=\"text\" required",
        "class=\"hp\" aria-hidden=\"true\"",
        "name=\"website\" type=\"text\" tabindex=\"-1\"",
        "id=\"lead-sent\"",
    ] {
        assert!(html.contains(part), "{part} missing");
    }
    assert!(!html.contains("__lead_form_started__"));

    let token = form_token(&app, &card).await;
    let sent = send_form(
        &app,
        &card,
        &[
            ("name", "Form Filler"),
            ("email", "filler@visitor.example"),
            ("phone", ""),
            ("company", ""),
            ("note", "From the page"),
            ("website", ""),
            ("started", &token),
        ],
    )
    .await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        sent.headers()["location"],
        format!("{}?lead=sent#lead-sent", card.page()).as_str()
    );
    let leads = list(&app, &admin, "").await;
    assert_eq!(names(&leads), ["Form Filler"]);
    assert_eq!(
        leads["leads"][0]["company"],
        Value::Null,
        "empty fields are none"
    );
    // The thank-you state is the same page (its note shown by `:target`).
    let thanks = app.get(&format!("{}?lead=sent", card.page()), None).await;
    thanks.assert_status(200);
}

#[tokio::test]
async fn a_refused_form_is_told_why_on_a_page_and_nothing_is_stored() {
    let app = app().await;
    let (_admin, card) = company_with_card(&app, "Acme Refusals").await;
    let token = form_token(&app, &card).await;
    let refused = send_form(&app, &card, &[("name", "No Contact"), ("started", &token)]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = refused.text().await.unwrap();
    assert!(html.contains("Your contact was not sent"), "{html}");
    assert!(html.contains("email address or a phone number"), "{html}");
    assert!(
        html.contains(&format!("href=\"{}#lead\"", card.page())),
        "{html}"
    );
    assert_eq!(count_leads(&app).await, 0);
}

#[tokio::test]
async fn spam_rules_refuse_the_honeypot_a_forged_token_and_another_cards_token() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Acme Spam").await;
    let other = Card::of(&app.add_employee(&admin, "Other Card").await);
    let contact = json!({"name": "Bot", "email": "bot@spam.example"});
    let with = |extra: Value| {
        let mut body = contact.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    leave(
        &app,
        &card,
        with(json!({"website": "https://spam.example"})),
    )
    .await
    .assert_error(422, "honeypot_filled");
    leave(&app, &card, with(json!({"started": "12345.deadbeef"})))
        .await
        .assert_error(422, "form_token_invalid");
    let others = form_token(&app, &other).await;
    leave(&app, &card, with(json!({"started": others})))
        .await
        .assert_error(422, "form_token_invalid");
    // A form field left out entirely is refused too.
    let resp = send_form(
        &app,
        &card,
        &[("name", "Bot"), ("email", "bot@spam.example")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count_leads(&app).await, 0, "refused leads are never stored");
}

#[tokio::test]
async fn a_form_sent_back_at_once_is_refused_as_too_fast() {
    // The default minimum time to fill (3 s): the token was issued a moment ago.
    let app = spawn_app().await;
    let (_admin, card) = company_with_card(&app, "Acme Hurry").await;
    leave(
        &app,
        &card,
        json!({"name": "Speedy", "email": "fast@visitor.example"}),
    )
    .await
    .assert_error(422, "form_too_fast");
    assert_eq!(count_leads(&app).await, 0);
}

#[tokio::test]
async fn leads_are_limited_per_client_address_with_retry_after() {
    let app = spawn_app_with(&[NO_MIN_FILL, ("LEADS_PER_ADDRESS_PER_HOUR", "2")]).await;
    let (admin, card) = company_with_card(&app, "Acme Limits").await;
    let other = Card::of(&app.add_employee(&admin, "Second Card").await);
    let lead = |n: u32| json!({"name": format!("Visitor {n}"), "email": "v@visitor.example"});
    leave(&app, &card, lead(1)).await.assert_status(201);
    leave(&app, &other, lead(2)).await.assert_status(201);
    let limited = leave(&app, &card, lead(3)).await;
    limited.assert_error(429, "too_many_leads");
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "{wait}");
    assert_eq!(count_leads(&app).await, 2);
}

#[tokio::test]
async fn leads_are_limited_per_card_whatever_the_address() {
    let app = spawn_app_with(&[
        NO_MIN_FILL,
        ("LEADS_PER_CARD_PER_HOUR", "1"),
        ("CLIENT_IP_HEADER", "X-Forwarded-For"),
    ])
    .await;
    let (admin, card) = company_with_card(&app, "Acme Busy Card").await;
    let other = Card::of(&app.add_employee(&admin, "Quiet Card").await);
    let send = async |card: &Card, address: &str| {
        let body = json!({"name": "Someone", "email": "s@visitor.example",
                          "started": form_token(&app, card).await});
        let resp = app
            .client
            .post(format!("{}{}", app.address, leads_path(card)))
            .header("X-Forwarded-For", address)
            .json(&body)
            .send()
            .await
            .unwrap();
        TestApp::read(resp).await
    };
    send(&card, "203.0.113.1").await.assert_status(201);
    let limited = send(&card, "203.0.113.2").await;
    limited.assert_error(429, "too_many_leads");
    assert!(limited.headers.contains_key("retry-after"));
    // Another card is not held back by this one.
    send(&other, "203.0.113.3").await.assert_status(201);
}

#[tokio::test]
async fn consent_when_the_company_asks_for_it() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Acme Consent").await;
    let settings = set_company(
        &app,
        &admin,
        json!({"lead_consent_required": true,
               "lead_consent_text": "I agree that Acme Consent keeps my details for 1 year.",
               "privacy_policy_url": "https://acme.example/privacy"}),
    )
    .await;
    settings.assert_status(200);
    assert_eq!(settings.body["lead_consent_required"], true);
    let html = page(&app, &card).await;
    assert!(html.contains("I agree that Acme Consent keeps my details for 1 year."));
    assert!(html.contains("name=\"consent\" type=\"checkbox\" value=\"yes\" required"));
    assert!(html.contains("href=\"https://acme.example/privacy\""));

    let lead = json!({"name": "Careful", "email": "careful@visitor.example"});
    leave(&app, &card, lead.clone())
        .await
        .assert_error(422, "consent_required");
    let mut refused = lead.clone();
    refused["consent"] = false.into();
    leave(&app, &card, refused)
        .await
        .assert_error(422, "consent_required");
    let token = form_token(&app, &card).await;
    let by_form = send_form(
        &app,
        &card,
        &[
            ("name", "Ticked"),
            ("phone", "555 0100"),
            ("consent", "yes"),
            ("started", &token),
        ],
    )
    .await;
    assert_eq!(by_form.status(), StatusCode::SEE_OTHER);
    let stored = list(&app, &admin, "").await;
    assert_eq!(stored["leads"][0]["consent_given"], true);
    assert_eq!(
        stored["leads"][0]["consent_text"],
        "I agree that Acme Consent keeps my details for 1 year."
    );
}

#[tokio::test]
async fn a_company_that_takes_no_leads_shows_no_form_and_refuses_them() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Acme Closed").await;
    let token = form_token(&app, &card).await;
    set_company(&app, &admin, json!({"lead_capture_enabled": false}))
        .await
        .assert_status(200);
    let resp = app.get(&card.page(), None).await;
    let html = resp.body.as_str().unwrap();
    assert!(!html.contains("Share your contact"));
    let csp = resp.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'none'"), "{csp}");
    leave(
        &app,
        &card,
        json!({"name": "Late", "email": "late@visitor.example", "started": token}),
    )
    .await
    .assert_error(403, "lead_capture_disabled");
    assert_eq!(count_leads(&app).await, 0);
}

#[tokio::test]
async fn lead_settings_are_checked_and_null_clears_what_may_be_cleared() {
    let app = app().await;
    let (admin, _card) = company_with_card(&app, "Acme Settings").await;
    let company = app
        .get(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    assert_eq!(company.body["lead_capture_enabled"], true);
    assert_eq!(company.body["lead_consent_required"], false);
    assert_eq!(company.body["lead_retention_days"], Value::Null);
    for bad in [
        json!({"privacy_policy_url": "javascript:alert(1)"}),
        json!({"privacy_policy_url": "/privacy"}),
        json!({"lead_retention_days": 0}),
        json!({"lead_retention_days": 3651}),
        json!({"lead_consent_text": "x".repeat(1001)}),
        json!({"lead_consent_text": "bad\u{0007}bell"}),
        json!({"lead_capture_enabled": null}),
        json!({"lead_consent_required": "yes"}),
    ] {
        let resp = set_company(&app, &admin, bad.clone()).await;
        assert!(
            resp.status.is_client_error(),
            "{bad}: {} {}",
            resp.status,
            resp.body
        );
        assert!(resp.body["code"].is_string(), "{bad}: {}", resp.body);
    }
    let set = set_company(
        &app,
        &admin,
        json!({"lead_retention_days": 365, "privacy_policy_url": "https://acme.example/p"}),
    )
    .await;
    set.assert_status(200);
    assert_eq!(set.body["lead_retention_days"], 365);
    let cleared = set_company(
        &app,
        &admin,
        json!({"lead_retention_days": null, "privacy_policy_url": null}),
    )
    .await;
    cleared.assert_status(200);
    assert_eq!(cleared.body["lead_retention_days"], Value::Null);
    assert_eq!(cleared.body["privacy_policy_url"], Value::Null);
    let events = audit_events(&app, &admin, "action=company.updated").await;
    assert!(
        events
            .iter()
            .any(|e| e["changes"]["lead_retention_days"]["after"] == 365),
        "{events:?}"
    );
}

#[tokio::test]
async fn bad_input_is_a_4xx_in_the_error_shape_never_a_500() {
    let app = app().await;
    let (_admin, card) = company_with_card(&app, "Acme Input").await;
    let token = form_token(&app, &card).await;
    let cases = [
        (json!({"email": "a@b.example"}), 422),
        (json!({"name": "", "email": "a@b.example"}), 422),
        (json!({"name": "No Contact"}), 422),
        (
            json!({"name": "Phone Only", "send_vcard": true, "phone": "555 0100"}),
            422,
        ),
        (json!({"name": "Bad Email", "email": "not-an-email"}), 422),
        (json!({"name": "Bad Phone", "phone": "call me"}), 422),
        (json!({"name": "Nul\u{0000}", "email": "a@b.example"}), 422),
        (json!({"name": "Bell\u{0007}", "email": "a@b.example"}), 422),
        (json!({"name": "Bidi\u{202E}", "email": "a@b.example"}), 422),
        (
            json!({"name": "Long", "email": "a@b.example", "note": "n".repeat(2001)}),
            422,
        ),
        (json!({"name": 42, "email": "a@b.example"}), 422),
        (
            json!({"name": "Extra", "email": "a@b.example", "role": "admin"}),
            422,
        ),
        (
            json!({"name": "Big", "email": "a@b.example", "note": "x".repeat(20_000)}),
            413,
        ),
    ];
    for (mut body, status) in cases {
        body["started"] = token.clone().into();
        let resp = app.post(&leads_path(&card), None, body.clone()).await;
        assert!(
            resp.status.as_u16() == status || (status == 422 && resp.status == 400),
            "{body}: {} {}",
            resp.status,
            resp.body
        );
        assert!(resp.body["code"].is_string(), "{body}: {}", resp.body);
        assert!(resp.body["detail"].is_string(), "{body}: {}", resp.body);
    }
    // A NUL in a form field too.
    let resp = send_form(
        &app,
        &card,
        &[
            ("name", "Nul\0Form"),
            ("email", "a@b.example"),
            ("started", &token),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // No such card.
    app.post(
        "/api/card/no-such-company/nobody/leads",
        None,
        json!({"name": "X", "email": "a@b.example", "started": token}),
    )
    .await
    .assert_error(404, "not_found");
    assert_eq!(count_leads(&app).await, 0);
}
