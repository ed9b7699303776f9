"""May this item leave? The gate's rules as one pure function over what is known of a tag.

What the gate knows of a tag in a pass grows as it works:

* its **security state** (:class:`~hardware.tags.SecurityState`): SECURED straight from an
  inventory filtered on the library's secured AFI; otherwise from a probe of the tag's AFI
  (Get System Information) and EAS bit; None until one of those happened;
* its **facts** (:class:`TagFacts`): what a read of its memory says (item id, owner library,
  type of usage), or that the memory could not be decoded; None until it was read;
* the edge agent's **cache** state of the item (on loan, on the shelf, …), by item id.

:func:`decide` turns that into a :class:`Decision`: ALARM, ALLOW, or a request for more work
(PROBE the security state, IDENTIFY the tag by reading it). The rules, in order:

1. a patron card (type of usage 8) never alarms; neither does a tag of another library
   (its owner ISIL differs from ours);
2. the cache corrects the tag: an item on loan per the cache never alarms (its tag could not
   be switched at checkout); an item the tag says is on loan but the cache says is not
   (returned, on hold, missing) alarms;
3. otherwise the tag's security state decides: SECURED alarms, anything else does not; a tag
   whose memory cannot be decoded therefore alarms only when it says it is secured.

With ``identify_first`` a secured tag the gate has not read yet is read before the alarm
(IDENTIFY), so that rules 1 and 2 can hold back a false alarm; if the read fails (the tag
left the field) the secured state alone decides, so an item read once is never missed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from hardware.tags import DataModel, SecurityState, Tag

__all__ = [
    "CacheLookup",
    "Decision",
    "Rules",
    "TagFacts",
    "Verdict",
    "decide",
    "is_foreign",
]


class Verdict(enum.Enum):
    """What the gate does about one tag in one pass."""

    ALARM = "alarm"
    ALLOW = "allow"
    #: The security state is not known yet: read the AFI (and EAS) before anything else.
    PROBE = "probe"
    #: Reading the tag's memory may change the outcome: read it.
    IDENTIFY = "identify"


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict and the reason for it, in words for the log and for staff."""

    verdict: Verdict
    reason: str

    @property
    def final(self) -> bool:
        """Whether no further work is asked for (ALARM or ALLOW)."""
        return self.verdict in (Verdict.ALARM, Verdict.ALLOW)


@dataclass(frozen=True, slots=True)
class TagFacts:
    """What one read of a tag's memory said, kept without the memory itself.

    ``model`` is UNKNOWN (with ``problem``) when the data models cannot decode the memory.
    """

    model: DataModel
    item_id: str | None = None
    owner_institution: str | None = None
    title: str | None = None
    patron_card: bool = False
    problem: str | None = None

    @classmethod
    def from_tag(cls, tag: Tag) -> TagFacts:
        """Keep the facts of a decoded tag (never its memory)."""
        item = tag.item
        if item is None:
            return cls(model=tag.model, problem=tag.problem)
        return cls(
            model=tag.model,
            item_id=item.primary_item_id,
            owner_institution=item.owner_institution,
            title=item.title,
            patron_card=item.is_patron_card,
        )

    @property
    def decoded(self) -> bool:
        """Whether the memory held item data of a known model."""
        return self.item_id is not None


#: The cache state of an item by id (None when the cache does not know it).
CacheLookup = Callable[[str], str | None]

#: Cache states that mean "the item should be in the library".
_NOT_ON_LOAN = frozenset({"on_shelf", "on_hold", "missing"})


@dataclass(frozen=True, slots=True)
class Rules:
    """A library's choices that shape the decision (from the site configuration)."""

    own_isil: str | None = None
    identify_first: bool = True
    #: Read tags that say "on loan" when the cache could say otherwise.
    check_returned: bool = True


def is_foreign(owner: str | None, own_isil: str | None) -> bool:
    """Tell whether an owner ISIL names another library (ISILs compare without case)."""
    if owner is None or own_isil is None:
        return False
    return owner.strip().casefold() != own_isil.strip().casefold()


def decide(  # noqa: PLR0911 - one return per rule, in the docstring's order
    security: SecurityState | None,
    facts: TagFacts | None,
    rules: Rules,
    cache: CacheLookup,
    *,
    identify_failed: bool = False,
    cache_known: bool = True,
) -> Decision:
    """Decide one tag in one pass from what is known so far (see the module docstring).

    ``identify_failed`` says a read of the tag was tried and failed, so IDENTIFY is not asked
    again; ``cache_known`` says the gate holds item states at all (otherwise reading an
    unsecured tag to consult the cache is pointless).
    """
    if facts is not None and facts.decoded:
        return _decide_item(security, facts, rules, cache)
    if security is None:
        return Decision(Verdict.PROBE, "security state not read yet")
    if security is SecurityState.SECURED:
        if facts is None and rules.identify_first and not identify_failed:
            return Decision(Verdict.IDENTIFY, "secured; reading it before alarming")
        if facts is None:
            return Decision(Verdict.ALARM, "secured (tag not read)")
        return Decision(Verdict.ALARM, f"secured, data not readable: {facts.problem}")
    wants_cache = rules.check_returned and cache_known and security is SecurityState.UNSECURED
    if facts is None and wants_cache and not identify_failed:
        return Decision(Verdict.IDENTIFY, "on loan per tag; checking the cache")
    if facts is None:
        return Decision(Verdict.ALLOW, f"{security.value} per tag")
    return Decision(Verdict.ALLOW, f"{security.value} per tag, data not readable")


def _decide_item(  # noqa: PLR0911 - one return per rule
    security: SecurityState | None, facts: TagFacts, rules: Rules, cache: CacheLookup
) -> Decision:
    if facts.patron_card:
        return Decision(Verdict.ALLOW, "patron card")
    if is_foreign(facts.owner_institution, rules.own_isil):
        return Decision(Verdict.ALLOW, f"item of another library ({facts.owner_institution})")
    assert facts.item_id is not None  # decoded
    state = cache(facts.item_id)
    if state == "on_loan":
        return Decision(Verdict.ALLOW, "on loan per the cache")
    if security is None:
        return Decision(Verdict.PROBE, "security state not read yet")
    if security is SecurityState.SECURED:
        return Decision(Verdict.ALARM, "secured" + (f", {state} per the cache" if state else ""))
    if security is SecurityState.UNSECURED and state in _NOT_ON_LOAN:
        return Decision(Verdict.ALARM, f"on loan per tag but {state} per the cache")
    return Decision(Verdict.ALLOW, f"{security.value} per tag")
