//! Integration tests: the built binary against a fake Google on 127.0.0.1, and the real clients.

mod common;
mod fake_google;
mod fake_google_selftest;
mod key_source;
mod cache;
mod user_flow;
mod fake_kube;
mod kubectl;
mod google_creds;
mod flytekit;
mod external_account;
mod fake_git;
mod git;
mod stress;
mod cli_docs;
mod fuzz_corpus;
