"""The functions and constant of flytekitplugins-identity-aware-proxy, same names and signatures,
backed by the binary: ``get_service_account_id_token``, ``get_gcp_secret_manager_secret`` and
``WEBAPP_CLIENT_ID_HELP``. (The authenticator class is in ``_authenticator``: it may load flytekit.)"""

from __future__ import annotations

from typing import Optional

from ._token import get_token, run_plumbing

WEBAPP_CLIENT_ID_HELP = (
    "Webapp type OAuth 2.0 client ID used by the IAP. Typically in the form of "
    "`<xyz>.apps.googleusercontent.com`. Created when activating IAP for the Flyte deployment. "
    "https://cloud.google.com/iap/docs/enabling-kubernetes-howto#oauth-credentials"
)


def get_service_account_id_token(audience: str, service_account_email: str) -> str:
    """An ID token for ``audience`` from the service account of this environment:
    ``GOOGLE_APPLICATION_CREDENTIALS`` (a key, impersonated or external-account file), else the metadata
    server. ``service_account_email`` is accepted for compatibility; the environment decides the account
    (as it did in the seed, which used the email only to name its keyring entry)."""
    del service_account_email
    return get_token(audience=audience, non_interactive=True).token


def get_gcp_secret_manager_secret(project_id: str, secret_id: str, version: Optional[str] = None) -> str:
    """The payload of a Secret Manager secret version (``latest`` by default), read with the
    Application Default Credentials; its CRC32C is checked and one trailing newline dropped."""
    return run_plumbing(
        ["secret-manager-secret"],
        {"project": project_id, "secret": secret_id, "version": version or "latest"},
    )
