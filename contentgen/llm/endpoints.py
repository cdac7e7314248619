"""Where a base URL's chat completions, files and batches live, and how to authenticate there.

One client serves every OpenAI-compatible backend; only the URLs and the key header differ:

============================  =====================================================  =================
base URL                      chat completions                                       key header
============================  =====================================================  =================
https://api.openai.com/v1     {base}/chat/completions                                Authorization
http://127.0.0.1:8080/v1      (llama.cpp, vLLM, Ollama, LiteLLM: the same)           Authorization
https://R.openai.azure.com/   {R}/openai/deployments/{deployment}/chat/completions   api-key
  openai/deployments/DEP        ?api-version=V  (deployment: from the URL, else
  (?api-version=V)              the model name)
https://R.openai.azure.com    the same, deployment = the model name                  api-key
https://R.openai.azure.com/   {base}/chat/completions (the v1 API: no                api-key
  openai/v1                     api-version unless the URL has one)
============================  =====================================================  =================

A query string in the base URL (``?api-version=...``) is moved into every
request's query instead of being glued before the path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import openai

AZURE_DEFAULT_API_VERSION = "2024-10-21"
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
_DEPLOYMENT = re.compile(r"^(?P<prefix>.*?)/openai/deployments/(?P<dep>[^/]+)/?$")
_V1 = re.compile(r"^(?P<prefix>.*?)/openai/v1/?$")


@dataclass(frozen=True)
class Endpoint:
    kind: str                                   # "openai" (any OpenAI-compatible server) | "azure" | "azure-v1"
    base_url: str                               # without query or credentials
    chat_url: str                               # the full URL of POST chat completions
    query: dict[str, str] = field(default_factory=dict)
    deployment: str | None = None               # Azure: the deployment the chat URL names
    key_header: str = "Authorization"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        if not api_key:
            return {}
        if self.key_header == "api-key":
            return {"api-key": api_key}
        return {"Authorization": f"Bearer {api_key}"}

    @property
    def is_azure(self) -> bool:
        return self.kind != "openai"


def _strip_credentials(parts) -> str:
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return host


def resolve(base_url: str, model: str, *, api_version: str | None = None, azure: bool | None = None) -> Endpoint:
    """The endpoint for ``base_url``; ``azure`` None: recognized from the host or path."""
    parts = urlsplit(base_url)
    query = dict(parse_qsl(parts.query))
    netloc = _strip_credentials(parts)
    path = parts.path.rstrip("/")
    root = urlunsplit((parts.scheme, netloc, "", "", ""))
    host = (parts.hostname or "").lower()
    dep = _DEPLOYMENT.match(path)
    v1 = _V1.match(path)
    looks_azure = (host.endswith(_AZURE_HOSTS) or dep is not None or v1 is not None
                   or "api-version" in query or api_version is not None)
    if azure is False or (azure is None and not looks_azure):
        base = urlunsplit((parts.scheme, netloc, path, "", ""))
        return Endpoint("openai", base, base + "/chat/completions", query)
    if v1 is not None:
        base = root + v1.group("prefix") + "/openai/v1"
        if api_version:
            query["api-version"] = api_version
        return Endpoint("azure-v1", base, base + "/chat/completions", query, key_header="api-key")
    query["api-version"] = query.get("api-version") or api_version or AZURE_DEFAULT_API_VERSION
    prefix = dep.group("prefix") if dep else re.sub(r"/openai$", "", path)
    deployment = dep.group("dep") if dep else model
    base = root + prefix + "/openai"
    chat = f"{base}/deployments/{deployment}/chat/completions"
    return Endpoint("azure", base, chat, query, deployment=deployment, key_header="api-key")


def chat_url_with_query(ep: Endpoint) -> str:
    return ep.chat_url + ("?" + urlencode(ep.query) if ep.query else "")


def sdk_client(ep: Endpoint, api_key: str | None, *, timeout: float, http_client=None) -> openai.AsyncOpenAI:
    """The SDK client for Files, Batches and Models at this endpoint (retries off: ours wrap it)."""
    key = api_key or "not-needed"
    common = {"max_retries": 0, "timeout": timeout}
    if http_client is not None:
        common["http_client"] = http_client
    if ep.kind == "azure":
        endpoint = ep.base_url[: -len("/openai")] if ep.base_url.endswith("/openai") else ep.base_url
        return openai.AsyncAzureOpenAI(azure_endpoint=endpoint, api_version=ep.query["api-version"], api_key=key,
                                       **common)
    headers = {"api-key": key} if ep.kind == "azure-v1" else None
    return openai.AsyncOpenAI(base_url=ep.base_url, api_key=key, default_headers=headers,
                              default_query=ep.query or None, **common)
