"""The gate's rules (gate.decide) and the partial-read helpers (gate.identify), as pure code."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gate.decide import Decision, Rules, TagFacts, Verdict, decide, is_foreign
from gate.identify import complete_prefix
from hardware.tags import DataModel, ItemData, SecurityState, decode_tag, encode_item

OURS = "VN-DEMO"
RULES = Rules(own_isil=OURS, identify_first=True)
NO_CACHE: dict[str, str] = {}


def item(item_id: str = "31000123", owner: str | None = OURS, card: bool = False) -> TagFacts:
    return TagFacts(
        model=DataModel.ISO28560_2, item_id=item_id, owner_institution=owner, patron_card=card
    )


UNDECODABLE = TagFacts(model=DataModel.UNKNOWN, problem="damaged")


def run(
    security: SecurityState | None,
    facts: TagFacts | None,
    cache: dict[str, str] | None = None,
    rules: Rules = RULES,
    **kw: bool,
) -> Decision:
    states = cache if cache is not None else NO_CACHE
    return decide(security, facts, rules, states.get, **kw)


def test_secured_item_of_ours_alarms() -> None:
    """A secured tag of our library that the cache does not know alarms."""
    assert run(SecurityState.SECURED, item()).verdict is Verdict.ALARM


def test_secured_unknown_tag_is_read_first_when_identify_first() -> None:
    """With identify_first, a secured tag not yet read asks to be read instead of alarming."""
    assert run(SecurityState.SECURED, None).verdict is Verdict.IDENTIFY


def test_secured_unknown_tag_alarms_at_once_without_identify_first() -> None:
    """Without identify_first, a secured tag alarms on the inventory alone."""
    rules = Rules(own_isil=OURS, identify_first=False)
    assert run(SecurityState.SECURED, None, rules=rules).verdict is Verdict.ALARM


def test_secured_tag_that_could_not_be_read_alarms() -> None:
    """A failed read does not hold back the alarm of a secured tag (read once, never missed)."""
    assert run(SecurityState.SECURED, None, identify_failed=True).verdict is Verdict.ALARM


def test_undecodable_tag_alarms_only_when_secured() -> None:
    """A tag no data model decodes alarms when secured and stays silent otherwise."""
    assert run(SecurityState.SECURED, UNDECODABLE).verdict is Verdict.ALARM
    assert run(SecurityState.UNSECURED, UNDECODABLE).verdict is Verdict.ALLOW
    assert run(SecurityState.UNKNOWN, UNDECODABLE).verdict is Verdict.ALLOW


def test_foreign_item_never_alarms_even_when_secured() -> None:
    """An item whose owner ISIL is another library's passes, whatever its AFI says."""
    decision = run(SecurityState.SECURED, item(owner="DE-Heu1"))
    assert decision.verdict is Verdict.ALLOW
    assert "DE-Heu1" in decision.reason


def test_isil_comparison_ignores_case_and_spaces() -> None:
    """ISILs of the same library written differently are not foreign."""
    assert not is_foreign(" vn-demo", OURS)
    assert is_foreign("VN-DEMO2", OURS)
    assert not is_foreign(None, OURS)
    assert not is_foreign("VN-X", None)


def test_patron_card_never_alarms() -> None:
    """A patron card (type of usage 8) passes even with the secured AFI."""
    assert run(SecurityState.SECURED, item(card=True)).verdict is Verdict.ALLOW


def test_cache_on_loan_overrides_a_secured_tag() -> None:
    """An item on loan per the cache whose tag could not be switched does not alarm."""
    decision = run(SecurityState.SECURED, item(), {"31000123": "on_loan"})
    assert decision.verdict is Verdict.ALLOW


def test_cache_returned_overrides_an_unsecured_tag() -> None:
    """An item the tag says is on loan but the cache says is back on the shelf alarms."""
    for state in ("on_shelf", "on_hold", "missing"):
        decision = run(SecurityState.UNSECURED, item(), {"31000123": state})
        assert decision.verdict is Verdict.ALARM, state
        assert state in decision.reason


def test_unsecured_tag_is_read_to_consult_the_cache_only_when_one_is_held() -> None:
    """An unsecured tag asks to be read when a cache is held, and passes when none is."""
    assert run(SecurityState.UNSECURED, None).verdict is Verdict.IDENTIFY
    assert run(SecurityState.UNSECURED, None, cache_known=False).verdict is Verdict.ALLOW
    assert run(SecurityState.UNSECURED, None, identify_failed=True).verdict is Verdict.ALLOW


def test_unknown_security_asks_for_a_probe() -> None:
    """Before the AFI/EAS is known, the decision asks for a probe (unless the tag is exempt)."""
    assert run(None, None).verdict is Verdict.PROBE
    assert run(None, item()).verdict is Verdict.PROBE
    assert run(None, item(card=True)).verdict is Verdict.ALLOW


securities = st.sampled_from([None, *SecurityState])
facts_strategy = st.one_of(
    st.none(),
    st.just(UNDECODABLE),
    st.builds(
        item,
        item_id=st.text(min_size=1, max_size=10),
        owner=st.sampled_from([None, OURS, "DE-Heu1", "vn-demo"]),
        card=st.booleans(),
    ),
)
cache_strategy = st.dictionaries(
    st.text(min_size=1, max_size=10), st.sampled_from(["on_shelf", "on_loan", "on_hold", "missing"])
)


@given(securities, facts_strategy, cache_strategy, st.booleans(), st.booleans(), st.booleans())
def test_invariants_hold_for_every_combination(
    security: SecurityState | None,
    facts: TagFacts | None,
    cache: dict[str, str],
    identify_first: bool,
    failed: bool,
    cache_known: bool,
) -> None:
    """Cards, foreign items and loans never alarm; an undecodable or unread tag alarms only if secured."""
    rules = Rules(own_isil=OURS, identify_first=identify_first)
    decision = decide(
        security, facts, rules, cache.get, identify_failed=failed, cache_known=cache_known
    )
    assert decision.reason
    if decision.verdict is not Verdict.ALARM:
        return
    if facts is None or not facts.decoded:
        assert security is SecurityState.SECURED
    else:
        assert not facts.patron_card
        assert not is_foreign(facts.owner_institution, OURS)
        assert cache.get(facts.item_id or "") != "on_loan"
        assert security is SecurityState.SECURED or cache.get(facts.item_id or "") in (
            "on_shelf",
            "on_hold",
            "missing",
        )


def test_facts_from_a_decoded_tag_keep_no_memory() -> None:
    """TagFacts.from_tag keeps id, owner, title and card flag; an unreadable tag keeps its problem."""
    memory = encode_item(
        ItemData(primary_item_id="P77", owner_institution=OURS, type_of_usage=0x80),
        DataModel.ISO28560_2,
    )
    facts = TagFacts.from_tag(decode_tag(b"\xe0" * 8, memory, dsfid=6, afi=None, eas=None))
    assert (facts.item_id, facts.owner_institution, facts.patron_card) == ("P77", OURS, True)
    bad = TagFacts.from_tag(decode_tag(b"\xe0" * 8, b"\x5a" * 32, dsfid=0, afi=None, eas=None))
    assert not bad.decoded
    assert bad.problem


def test_complete_prefix_cuts_after_the_last_whole_element() -> None:
    """A partial ISO 28560-2 read is cut where its last complete element ends."""
    memory = encode_item(
        ItemData(primary_item_id="31000123", owner_institution=OURS, title="Truyện Kiều và thơ"),
        DataModel.ISO28560_2,
    )
    whole = complete_prefix(memory)
    assert decode_tag(b"\xe0" * 8, memory[:whole], dsfid=6, afi=None, eas=None).item is not None
    cut = complete_prefix(memory[:24])
    assert 0 < cut <= 24
    prefix = decode_tag(b"\xe0" * 8, memory[:cut], dsfid=6, afi=None, eas=None)
    assert prefix.item is not None
    assert prefix.item.primary_item_id == "31000123"
    assert prefix.item.owner_institution == OURS


@given(st.binary(max_size=200))
def test_complete_prefix_of_garbage_stays_in_bounds(data: bytes) -> None:
    """Any bytes give a cut inside the data, never an exception."""
    cut = complete_prefix(data)
    assert 0 <= cut <= len(data)
