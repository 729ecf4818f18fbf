//! Google's APIs, one file each: credential files (`adc`), service-account keys, the metadata server,
//! the user sign-in (`oauth`, `loopback`), IAM Credentials, Secret Manager, STS, and IAP's own answers (`iap`). Each speaks the wire
//! format of its endpoint and nothing else: caching and policy live in the callers.

pub mod adc;
pub mod iam;
pub mod iap;
pub mod loopback;
pub mod metadata;
pub mod oauth;
pub mod secret_manager;
pub mod service_account;
pub mod sts;

use crate::secret::Secret;

/// The OAuth scope for Google APIs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// An OAuth access token for Google APIs.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret<String>,
    pub expires_at: i64,
}
