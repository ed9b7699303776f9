"""``PUT /device/details``: a device process's own status, kept for the agent's retained status."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.api.details import ReportedDetails
from edge_agent.api.models import DeviceDetails
from edge_agent.client import AgentClient, AgentUnauthorized, InvalidRequest
from edge_agent.contract.central import StatusDetails
from tests.test_api_events import AUTH, TOKEN, Api, build, close

#: The body's own keys, so that generated bodies hit real fields as well as unknown ones.
KEYS = ["reader_connected", "printer", "alarms_today"]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    built = build(tmp_path)
    yield built
    close(built)


def test_put_without_or_with_a_wrong_token_is_401_and_stores_nothing(api: Api) -> None:
    """No token and a wrong token are both 401, and nothing is kept."""
    body = {"reader_connected": True}
    assert api.client.put("/device/details", json=body).status_code == 401
    wrong = api.client.put("/device/details", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"
    assert api.client.get("/device/details").status_code == 401
    assert api.ctx.device_details.reported() == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reader_connected": "maybe"}, "reader_connected"),
        ({"reader_connected": "true"}, "reader_connected"),
        ({"alarms_today": -1}, "alarms_today"),
        ({"alarms_today": 2.5}, "alarms_today"),
        ({"printer": "on_fire"}, "printer"),
        ({"outbox_pending": 3}, "outbox_pending"),
    ],
)
def test_a_wrong_field_is_422_naming_it(api: Api, body: dict[str, Any], field: str) -> None:
    """Each wrong or unknown field is refused with 422 and its name; nothing is kept."""
    response = api.client.put("/device/details", json=body, headers=AUTH)
    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == "invalid_request"
    assert [f["field"] for f in answer["fields"]] == [field]
    assert field in answer["message"]
    assert api.ctx.device_details.reported() == {}


def test_a_body_that_is_not_json_is_refused_saying_so(api: Api) -> None:
    """Broken JSON is a 422 saying so; bytes that are not even UTF-8 are a 400 error body."""
    response = api.client.put(
        "/device/details",
        content=b"{reader_connected: tru",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["message"]
    garbled = api.client.put(
        "/device/details",
        content=b"\xff\xfe{",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert garbled.status_code == 400
    assert garbled.json()["error"] == "http_error"
    assert "parsing the body" in garbled.json()["message"]
    assert api.ctx.device_details.reported() == {}


def test_reports_merge_and_null_clears(api: Api) -> None:
    """A later report keeps the fields it leaves out; an explicit null clears one."""
    first = api.client.put(
        "/device/details", json={"reader_connected": True, "printer": "ok"}, headers=AUTH
    )
    assert first.status_code == 200
    assert first.json() == {"reader_connected": True, "printer": "ok"}
    second = api.client.put(
        "/device/details", json={"alarms_today": 4, "printer": None}, headers=AUTH
    )
    assert second.json() == {"reader_connected": True, "alarms_today": 4}
    assert api.client.get("/device/details", headers=AUTH).json() == second.json()
    assert api.ctx.device_details.reported() == {"reader_connected": True, "alarms_today": 4}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.sampled_from(["ok", "paper_out", "offline"])
        | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=16), inner, max_size=4)
        ),
        max_leaves=6,
    )
)
def test_any_json_body_is_200_or_422_never_a_crash(api: Api, body: object) -> None:
    """Whatever JSON a device sends, the answer is 200 (valid) or 422 naming a problem."""
    response = api.client.put("/device/details", json=body, headers=AUTH)
    assert response.status_code in (200, 422)
    if response.status_code == 422:
        assert response.json()["fields"]
    else:
        assert isinstance(body, dict)
        DeviceDetails.model_validate(body)


def test_client_reports_and_reads_back_only_the_fields_it_sets(api: Api) -> None:
    """AgentClient sends only the fields set, so one report does not clear another's."""
    with AgentClient(str(api.client.base_url), token=TOKEN) as client:
        client.put_device_details(DeviceDetails(printer="paper_out"))
        kept = client.put_device_details(DeviceDetails(reader_connected=False))
        assert kept == DeviceDetails(printer="paper_out", reader_connected=False)
        assert client.device_details() == kept
        with pytest.raises(InvalidRequest) as refused:
            client.put_device_details(DeviceDetails.model_construct(alarms_today=-3))
        assert [f.field for f in refused.value.fields] == ["alarms_today"]
    with (
        AgentClient(str(api.client.base_url), token="wrong") as stranger,
        pytest.raises(AgentUnauthorized),
    ):
        stranger.put_device_details(DeviceDetails(reader_connected=True))


def test_from_status_takes_only_the_device_fields_that_are_set() -> None:
    """A gate's StatusDetails gives reader and alarms; its outbox figure is the agent's own."""
    gate = StatusDetails(reader_connected=True, alarms_today=2, outbox_pending=9)
    details = DeviceDetails.from_status(gate)
    assert details.model_dump(exclude_unset=True) == {"reader_connected": True, "alarms_today": 2}


def test_device_fields_are_status_details_fields_of_the_same_type() -> None:
    """Every DeviceDetails field exists in the contract's StatusDetails with the same type."""
    ours = typing.get_type_hints(DeviceDetails)
    contract = typing.get_type_hints(StatusDetails)
    for name in DeviceDetails.model_fields:
        assert ours[name] == contract[name], name


def test_reported_values_go_stale_and_are_dropped() -> None:
    """A value older than stale_after_s is no longer reported; a fresh one replaces it."""
    now = [100.0]
    store = ReportedDetails(stale_after_s=30, clock=lambda: now[0])
    store.update(DeviceDetails(reader_connected=True, alarms_today=1))
    now[0] += 20
    store.update(DeviceDetails(alarms_today=2))
    assert store.reported() == {"reader_connected": True, "alarms_today": 2}
    now[0] += 15
    assert store.reported() == {"alarms_today": 2}
    assert store.current() == DeviceDetails(alarms_today=2)
    with pytest.raises(ValueError, match="stale_after_s"):
        ReportedDetails(stale_after_s=0)
