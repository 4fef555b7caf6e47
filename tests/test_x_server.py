"""The local X server itself: cassettes load, replays are faithful, faults work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from xserver import XServer, load_cassettes

from listener.collectors.x import X_API_BASE, ApiBaseAdapter


@pytest.fixture
def server(shared_data: Path) -> Iterator[XServer]:
    with XServer(shared_data / "x-api") as srv:
        yield srv


def test_every_cassette_loads_and_binary_bodies_decode(shared_data: Path) -> None:
    folder = shared_data / "x-api"
    interactions = load_cassettes(folder)
    binary = sum(p.read_text().count("!!binary") for p in folder.glob("*.yaml"))
    assert len({i.source for i in interactions}) == len(list(folder.glob("*.yaml")))
    assert sum(i.gzipped for i in interactions) == binary > 50
    for it in interactions:
        assert it.json() is not None, (it.source, it.path)


def session(server: XServer) -> requests.Session:
    """A session that sends api.twitter.com requests to the local server, like the collector."""
    s = requests.Session()
    s.mount(X_API_BASE, ApiBaseAdapter(server.base_url, timeout=2))
    return s


def test_adapter_routes_api_urls_to_the_server_and_replays(server: XServer) -> None:
    resp = session(server).get(f"{X_API_BASE}/2/users/by?usernames=Twitter,TwitterDev")
    assert resp.status_code == 200
    assert [u["username"] for u in resp.json()["data"]] == ["Twitter", "TwitterDev"]
    assert resp.headers["x-rate-limit-limit"]  # recorded headers are replayed
    assert server.received[-1].path == "/2/users/by"


def test_replay_matches_query_when_it_matters(server: XServer) -> None:
    s = session(server)
    jobs = s.get(f"{X_API_BASE}/2/compliance/jobs?type=tweets").json()
    assert isinstance(jobs["data"], list)
    one = s.get(f"{X_API_BASE}/2/compliance/jobs/1446017776678801409").json()
    assert one["data"]["id"] == "1446017776678801409"
    assert s.get(f"{X_API_BASE}/2/nothing/here").status_code == 404


def test_faults_are_injected_once(server: XServer) -> None:
    s = session(server)
    server.fail("/2/users/me", 503)
    assert s.get(f"{X_API_BASE}/2/users/me").status_code == 503
    assert s.get(f"{X_API_BASE}/2/users/me").json()["data"]["username"] == "TweepyDev"


def test_rate_limit_counts_down_then_429(server: XServer) -> None:
    s = session(server)
    server.set_rate_limit("/2/users/me", limit=3, remaining=1, reset=2_000_000_000)
    first = s.get(f"{X_API_BASE}/2/users/me")
    assert (first.status_code, first.headers["x-rate-limit-remaining"]) == (200, "0")
    second = s.get(f"{X_API_BASE}/2/users/me")
    assert second.status_code == 429
    assert second.headers["x-rate-limit-reset"] == "2000000000"
