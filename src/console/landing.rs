//! `GET /`: the service's front page. What CallingCard is, and the ways in: sign up, log in,
//! the API's documentation. Framed like the console (its stylesheet, its strict policy).

use maud::html;
use poem::{Response, handler};

use super::{
    csrf::CsrfToken,
    layout::{self, Shell},
};

#[handler]
pub fn page() -> Response {
    // `/` is outside `/app`: no session cookie reaches it (they are sent to `/app` only), and
    // the page has no form, so the token in the shell is never checked.
    let token = CsrfToken::new_random();
    let shell = Shell {
        title: "Digital business cards for your team",
        user: None,
        csrf: &token,
        section: None,
    };
    layout::page(
        &shell,
        html! {
            section class="panel landing" {
                h1 { "CallingCard" }
                p class="lead" {
                    "Digital business cards for your whole company: every employee gets a card \
                     page and a QR code in your brand, you keep them up to date in one place, \
                     and you see when they are scanned and saved."
                }
                p class="row" {
                    a class="button" href="/app/signup" { "Sign up your company" }
                    " "
                    a class="button secondary" href="/app/login" { "Log in" }
                }
            }
            section class="panel" {
                h2 { "How it works" }
                ul {
                    li { "Add your people by hand or import a spreadsheet." }
                    li { "Brand the cards with your logo and colours." }
                    li { "Share each card's link or QR code; it saves straight to a phone's contacts." }
                    li { "Follow views, scans and saves in the analytics." }
                }
                p { "Building on it? " a href="/docs" { "Read the API documentation" } "." }
            }
        },
    )
}
