//! `KUBERNETES_EXEC_INFO` as kubectl sets it: the ExecCredential apiVersion to answer in, whether kubectl
//! gives the plugin a terminal, and the per-cluster defaults of the kubeconfig cluster extension
//! `client.authentication.k8s.io/exec`.

use serde::Deserialize;

use crate::error::{Error, Result, clean};

/// The ExecCredential apiVersion kubectl asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecApiVersion {
    V1,
    V1beta1,
}

impl ExecApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecApiVersion::V1 => "client.authentication.k8s.io/v1",
            ExecApiVersion::V1beta1 => "client.authentication.k8s.io/v1beta1",
        }
    }
}

/// What `KUBERNETES_EXEC_INFO` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecInfo {
    pub api_version: ExecApiVersion,
    pub interactive: Option<bool>,
    pub cluster: ClusterConfig,
}

/// Per-cluster defaults from the kubeconfig cluster extension `client.authentication.k8s.io/exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfig {
    pub audience: Option<String>,
    pub client_id: Option<String>,
    pub account: Option<String>,
    pub impersonate_service_account: Option<String>,
}

/// Parses `KUBERNETES_EXEC_INFO` as kubectl sets it.
pub fn parse_exec_info(text: &str) -> Result<ExecInfo> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(rename = "apiVersion")]
        api_version: Option<String>,
        #[serde(default)]
        spec: Spec,
    }
    #[derive(Deserialize, Default)]
    struct Spec {
        interactive: Option<bool>,
        cluster: Option<Cluster>,
    }
    #[derive(Deserialize)]
    struct Cluster {
        config: Option<serde_json::Value>,
    }
    let fix = "KUBERNETES_EXEC_INFO is set by kubectl; if you set it by hand, unset it, else check the kubeconfig's exec stanza";
    let raw: Raw = serde_json::from_str(text).map_err(|e| {
        Error::config(
            format!("KUBERNETES_EXEC_INFO is not a valid ExecCredential ({})", clean(&e.to_string(), 120)),
            fix,
        )
    })?;
    let api_version = match raw.api_version.as_deref() {
        None | Some("client.authentication.k8s.io/v1") => ExecApiVersion::V1,
        Some("client.authentication.k8s.io/v1beta1") => ExecApiVersion::V1beta1,
        Some(other) => {
            return Err(Error::config(
                format!("KUBERNETES_EXEC_INFO asks for apiVersion '{}', which is not supported", clean(other, 80)),
                "use apiVersion client.authentication.k8s.io/v1 (or v1beta1) in the kubeconfig's exec stanza",
            ));
        }
    };
    let cluster = match raw.spec.cluster.and_then(|c| c.config) {
        None | Some(serde_json::Value::Null) => ClusterConfig::default(),
        Some(value) => serde_json::from_value(value).map_err(|e| {
            Error::config(
                format!(
                    "the kubeconfig cluster extension client.authentication.k8s.io/exec is not usable ({})",
                    clean(&e.to_string(), 120)
                ),
                "give it string keys audience, clientId, account, impersonateServiceAccount",
            )
        })?,
    };
    Ok(ExecInfo { api_version, interactive: raw.spec.interactive, cluster })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_info_versions_and_cluster_config() {
        let info = parse_exec_info(r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#).unwrap();
        assert_eq!(info.api_version, ExecApiVersion::V1beta1);
        assert_eq!(info.interactive, Some(false));
        let info = parse_exec_info(
            r#"{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true,"cluster":{"server":"https://x","config":{"audience":"aud-1","clientId":"cid"}}}}"#,
        )
        .unwrap();
        assert_eq!(info.cluster.audience.as_deref(), Some("aud-1"));
        assert_eq!(info.cluster.client_id.as_deref(), Some("cid"));
        assert!(parse_exec_info("junk").unwrap_err().to_string().contains("not a valid ExecCredential"));
        let err = parse_exec_info(r#"{"apiVersion":"client.authentication.k8s.io/v2"}"#).unwrap_err();
        assert!(err.to_string().contains("'client.authentication.k8s.io/v2', which is not supported"));
    }
}
