//! Integration tests: the built binary against a fake Google on 127.0.0.1, and the real clients.

// The rule that only config.rs reads the environment is the product's, not the tests'.
#![allow(clippy::disallowed_methods)]

mod cache;
mod cli_docs;
mod common;
mod discovery;
mod external_account;
mod fake_git;
mod fake_google;
mod fake_google_selftest;
mod fake_iap;
mod fake_kube;
mod flytekit;
mod fuzz_corpus;
mod git;
mod google_creds;
mod iap_front;
mod key_source;
mod kubectl;
mod layers;
mod profiles;
mod proxy;
mod python;
mod secret_manager_secret;
mod setup_doctor;
mod signed_jwt;
mod status;
mod stress;
mod tls_front;
mod user_flow;
