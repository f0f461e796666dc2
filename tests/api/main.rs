//! The integration tests, as one binary: one PostgreSQL cluster for the whole run (see
//! `helpers`), every test on a database of its own cloned from the migrated template. One module
//! per feature; tests/README.md says how to add one.

mod browser;
mod helpers;

mod analytics_bad_input;
mod analytics_dashboards;
mod analytics_dashboards_smoke;
mod analytics_retention;
mod analytics_tracking;
mod api_contract;
mod audit;
mod audit_accounts;
mod audit_logins;
mod auth;
mod bad_input;
mod card_page_browser;
mod card_page_webdriver;
mod companies;
mod connections;
mod console_account;
mod console_admin;
mod console_analytics;
mod console_branding;
mod console_browser;
mod console_client;
mod console_import;
mod console_people;
mod console_shell;
mod database_outage;
mod email_verification;
mod employee_import;
mod employee_list;
mod employees;
mod invitations;
mod leads;
mod leads_members;
mod live_feed;
mod login_throttle;
mod mail;
mod metrics;
mod migrations;
mod password_reset;
mod public_cards;
mod public_limits;
mod request_ids;
mod required_fields;
mod revocation;
mod sealed_writes;
mod serve_binary;
mod sessions;
mod teammates;
mod tenancy_matrix;
mod tenant_wall;
mod token_limits;
