//! The snippets `setup` prints, each naming the profile: Flyte's `admin.proxyCommand` / `admin.command`,
//! a kubeconfig `users[].user.exec` stanza, the git config lines (other helpers cleared for the URL first),
//! and a curl line that keeps the token out of every argument list.

use crate::cli::SetupPrint;

/// The snippet for `what`, for the profile `profile` of the service at `url`.
pub fn snippet(what: SetupPrint, profile: &str, url: &str) -> String {
    let args = format!("\"token\", \"--profile\", \"{profile}\"");
    match what {
        SetupPrint::Flyte => format!(
            "# ~/.flyte/config.yaml: IAP's token in proxy-authorization, Flyte's own auth untouched\n\
admin:\n  endpoint: dns:///{host}\n  proxyCommand: [\"iap-token\", {args}]\n\
# or, where IAP is Flyte's only auth:\n#   authType: ExternalCommand\n#   command: [\"iap-token\", {args}]\n",
            host = host_of(url)
        ),
        SetupPrint::Kubectl => format!(
            "# kubeconfig users[] entry\n- name: {profile}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: iap-token\n      args: [{args}]\n      interactiveMode: IfAvailable\n"
        ),
        SetupPrint::Git => {
            let base = url.trim_end_matches('/');
            let mut text = format!(
                "# git (2.46 or later): other helpers cleared for this URL first, then iap-token\n\
git config --global credential.{base}.helper \"\"\n\
git config --global --add credential.{base}.helper \"iap-token git-credential\"\n\
git config --global http.{base}.proactiveAuth auto\n"
            );
            if has_path(url) {
                text.push_str(&format!("git config --global credential.{base}.useHttpPath true\n"));
            }
            text
        }
        SetupPrint::Curl => format!(
            "# curl: the header read from a pipe, never in an argument list\n\
curl -H @<(iap-token token --profile {profile} --format header) {url}\n"
        ),
    }
}

/// All four, in order.
pub fn all_snippets(profile: &str, url: &str) -> String {
    [SetupPrint::Flyte, SetupPrint::Kubectl, SetupPrint::Git, SetupPrint::Curl]
        .into_iter()
        .map(|what| snippet(what, profile, url))
        .collect::<Vec<_>>()
        .join("\n")
}

fn host_of(url: &str) -> String {
    url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| url.to_string())
}

fn has_path(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| !u.path().trim_end_matches('/').is_empty())
}
