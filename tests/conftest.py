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
