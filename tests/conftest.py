"""Shared pytest fixtures.

Fake OpenAI server: one real loopback HTTP server for the whole session
(``_fake_openai_server``), reset to a clean state before every test that asks
for ``fake_openai``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_openai import FakeOpenAI


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
