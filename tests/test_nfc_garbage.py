"""Garbage in: card data and reader frames that make no sense must give clear, typed outcomes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import ndef
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.nfc_card import DEFAULT_URI_NUMBER_PATTERN, NfcCardReader
from simulators.card import SimulatedCard, ndef_message


class StoredNdef:
    """What nfcpy's ``tag.ndef`` offers: records decoded (leniently) from the stored octets."""

    def __init__(self, octets: bytes) -> None:
        self.octets = octets

    @property
    def records(self) -> list[Any]:
        return list(ndef.message_decoder(self.octets, errors="relax"))


READER = NfcCardReader("udp:127.0.0.1:9")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_ndef_octets_give_a_clean_number_or_none(octets: bytes) -> None:
    """Whatever a card stores as NDEF, the reader returns a printable number or nothing."""
    number, source = READER._number_from_ndef(StoredNdef(octets))
    if number is None:
        assert source is None
    else:
        assert source in ("ndef-text", "ndef-uri")
        assert number.isprintable()
        assert number == number.strip()
        assert 0 < len(number) <= 64


@given(st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and t.strip().isprintable()))
def test_text_record_round_trip(number: str) -> None:
    """A Text record written by the simulator's own encoder is read back as the same number."""
    octets = ndef_message(number, "text")
    assert READER._number_from_ndef(StoredNdef(octets)) == (number.strip(), "ndef-text")


def test_uri_record_without_a_number_gives_none() -> None:
    """A URI with nothing after the scheme yields no card number."""
    octets = b"".join(ndef.message_encoder([ndef.UriRecord("https://")]))
    assert READER._number_from_ndef(StoredNdef(octets)) == (None, None)


def test_uri_pattern_takes_a_query_value() -> None:
    """The default URI pattern also finds the number in a ``?card=`` query."""
    octets = b"".join(ndef.message_encoder([ndef.UriRecord("https://lib.example/p?card=77-1")]))
    assert READER._number_from_ndef(StoredNdef(octets)) == ("77-1", "ndef-uri")
    assert re.search(DEFAULT_URI_NUMBER_PATTERN, "https://lib.example/p?card=77-1")


def test_control_characters_in_a_text_record_are_refused() -> None:
    """A Text record holding control characters is not passed on as a card number."""
    octets = b"".join(ndef.message_encoder([ndef.TextRecord("1234\x07567")]))
    assert READER._number_from_ndef(StoredNdef(octets)) == (None, None)


@pytest.fixture(scope="module")
def cards() -> Iterator[tuple[SimulatedCard, SimulatedCard]]:
    with (
        SimulatedCard(bytes.fromhex("04A1B2C3D4E5F6"), card_number="123") as ntag,
        SimulatedCard(bytes.fromhex("0102030405060708"), kind="felica", card_number="9") as felica,
    ):
        yield ntag, felica


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(datagram=st.binary(max_size=80))
def test_simulated_card_survives_any_datagram(
    cards: tuple[SimulatedCard, SimulatedCard], datagram: bytes
) -> None:
    """The card simulator answers or ignores any datagram without raising."""
    for card in cards:
        card.present()
        reply = card._handle_datagram(datagram)
        assert reply is None or reply.split(b" ")[0] in (b"106A", b"212F", b"424F")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(brty=st.sampled_from(["106A", "212F"]), frame=st.binary(max_size=40))
def test_simulated_cards_survive_any_frame(
    cards: tuple[SimulatedCard, SimulatedCard], brty: str, frame: bytes
) -> None:
    """Well-formed datagrams carrying arbitrary frames never crash either card kind."""
    for card in cards:
        card.present()
        reply = card._handle_datagram(brty.encode() + b" " + frame.hex().encode())
        assert reply is None or reply.startswith(brty.encode() + b" ")
