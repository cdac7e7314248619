"""Shared pytest fixtures.

Fake OpenAI server: one real loopback HTTP server for the whole session
(``_fake_openai_server``), reset to a clean state before every test that asks
for ``fake_openai``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fake_openai import FakeOpenAI

#: every run signs its unsubscribe links (contentgen/links.py); the suite's own secret, set before any test
#: (and any process a test starts) reads it. tests/test_hostile.py unsets it to see `run` refuse.
TEST_LINK_SECRET = "contentgen-test-suite-link-secret"
os.environ["CONTENTGEN_LINK_SECRET"] = TEST_LINK_SECRET


@pytest.fixture(scope="session")
def _fake_openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(_fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """A running fake OpenAI-compatible server (``.base_url``), clean for this test."""
    _fake_openai_server.reset()
    yield _fake_openai_server
    _fake_openai_server.reset()


@pytest.fixture(scope="session")
def _pg_cluster():
    """One throwaway PostgreSQL cluster for the session (started on first use, stopped at the end)."""
    from tests.pg import PgCluster

    cluster = PgCluster()
    if cluster.why_not is None:
        try:
            cluster.start()
        except Exception as e:  # noqa: BLE001 - the reason goes into the skip
            cluster.stop()
            err = getattr(e, "stderr", b"") or b""
            cluster.why_not = (f"the PostgreSQL test cluster did not start: {e} "
                               f"{err.decode(errors='replace').strip()[-300:]}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(_pg_cluster) -> str:
    """A fresh, empty PostgreSQL database on loopback (skipped, with the reason, where PostgreSQL is missing)."""
    if _pg_cluster.why_not:
        pytest.skip(_pg_cluster.why_not)
    return _pg_cluster.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request) -> str | None:
    """Each backend in turn: None (the default, OUT/run.db) and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request, _pg_cluster) -> str | None:
    """Each backend in turn for a module: None (SQLite) and one PostgreSQL database the module shares
    (tests on it use their own scopes or clean up)."""
    if request.param == "sqlite":
        return None
    if _pg_cluster.why_not:
        pytest.skip(_pg_cluster.why_not)
    return _pg_cluster.new_database()
