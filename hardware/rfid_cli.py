"""``libedge rfid``: talk to an item reader from the command line, and decode/encode tag data.

Sub-commands (each takes ``--json`` for machine-readable output)::

    libedge rfid info       --url URL            the reader's firmware and hardware
    libedge rfid inventory  --url URL [--afi N]  UIDs in the field
    libedge rfid read       --url URL [--afi N]  every tag in the field, decoded
    libedge rfid secure     --url URL UID        check an item in (and verify)
    libedge rfid unsecure   --url URL UID        check an item out (and verify)
    libedge rfid decode     HEX [--model 2|3]    decode tag memory given in hex
    libedge rfid encode     --model 2|3 --item ID [--isil ISIL] [--title TITLE]

``URL`` is anything :func:`hardware.ports.open_port` accepts (``serial:///dev/ttyUSB0?baud=38400``,
``/dev/pts/4``, ``socket://host:port``). Errors print one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hardware.feig import FeigReader
    from hardware.rfid_ops import FieldReading, SecurityResult
    from hardware.tags import ItemData, SecurityConfig, Tag

HELP = "item reader (FEIG ISO Host) tools: info, inventory, read, secure/unsecure, decode, encode"

_EXIT_FAILED = 1


def _byte(text: str) -> int:
    """Parse a byte given as decimal or 0x-hex."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 7 or 0x07)") from None
    if not 0 <= value <= 0xFF:
        raise argparse.ArgumentTypeError(f"{text!r} is not a byte (0..255)")
    return value


def _reader_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("reader")
    group.add_argument("--url", required=True, help="reader port URL, e.g. /dev/ttyUSB0")
    group.add_argument("--address", type=_byte, default=0xFF, help="bus address (default 0xFF)")
    group.add_argument("--baud", type=int, default=38400, help="default baud rate (38400)")
    group.add_argument("--parity", choices=("N", "E", "O"), default="E", help="default parity (E)")
    group.add_argument("--timeout", type=float, default=0.5, help="reply timeout in seconds")
    group.add_argument(
        "--block-order",
        choices=("reversed", "memory"),
        default="reversed",
        help="byte order of data blocks on the wire (default reversed)",
    )
    return common


def _security_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("library security convention")
    group.add_argument("--secured-afi", type=_byte, default=0x07, help="AFI on the shelf (0x07)")
    group.add_argument("--unsecured-afi", type=_byte, default=0xC2, help="AFI on loan (0xC2)")
    group.add_argument("--no-afi", action="store_true", help="the library does not use AFI")
    group.add_argument("--eas", action="store_true", help="the library uses the NXP EAS bit")
    return common


def _output_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    return common


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the sub-commands and their options."""
    reader, security, output = _reader_options(), _security_options(), _output_options()
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("info", parents=[reader, output], help="the reader's firmware and hardware")
    for name, text in (("inventory", "UIDs of the tags in the field"), ("read", "decoded tags")):
        p = sub.add_parser(name, parents=[reader, security, output], help=text)
        p.add_argument("--afi", type=_byte, help="only tags with this AFI")
    for name, text in (
        ("secure", "secure an item (check-in) and verify"),
        ("unsecure", "unsecure an item (checkout) and verify"),
    ):
        p = sub.add_parser(name, parents=[reader, security, output], help=text)
        p.add_argument("uid", metavar="UID", help="tag UID, 16 hex digits (E0…)")
        p.add_argument("--retries", type=int, default=3, help="extra attempts (default 3)")
    p = sub.add_parser("decode", parents=[output], help="decode tag memory given in hex")
    p.add_argument("hex", metavar="HEX", help="user memory as hex (spaces allowed)")
    p.add_argument("--model", choices=("2", "3"), help="ISO 28560 part (default: detect)")
    p = sub.add_parser("encode", parents=[output], help="encode an item as tag memory")
    p.add_argument("--model", choices=("2", "3"), required=True, help="ISO 28560 part")
    p.add_argument("--item", required=True, help="primary item identifier (barcode)")
    p.add_argument("--isil", help="owner institution ISIL, e.g. DE-Heu1")
    p.add_argument("--title", help="title (ISO 28560-2 only)")
    p.add_argument(
        "--usage",
        type=_byte,
        help="type of usage byte (default: none for -2, 0x10 circulating for -3)",
    )


# ---------------------------------------------------------------- plain data for JSON


def _item_dict(item: ItemData | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {
        "primary_item_id": item.primary_item_id,
        "owner_institution": item.owner_institution,
        "set_info": (
            None
            if item.set_info is None
            else {"parts": item.set_info.parts, "part": item.set_info.part}
        ),
        "type_of_usage": item.type_of_usage,
        "shelf_location": item.shelf_location,
        "title": item.title,
        "other": {
            str(oid): value if isinstance(value, str) else value.hex().upper()
            for oid, value in item.other.items()
        },
        "extension": item.extension.hex().upper(),
    }


def _tag_dict(tag: Tag) -> dict[str, Any]:
    return {
        "uid": tag.uid_hex,
        "model": str(tag.model),
        "security": str(tag.security),
        "afi": tag.afi,
        "dsfid": tag.dsfid,
        "eas": tag.eas,
        "item": _item_dict(tag.item),
        "problem": tag.problem,
        "memory": tag.raw.hex().upper(),
    }


def _reading_dict(reading: FieldReading) -> dict[str, Any]:
    return {
        "tags": [_tag_dict(tag) for tag in reading.tags],
        "lost": [
            {"uid": lost.uid_hex, "stage": lost.stage, "error": lost.error} for lost in reading.lost
        ],
    }


def _security_dict(result: SecurityResult) -> dict[str, Any]:
    return {
        "uid": result.uid_hex,
        "secured": result.secured,
        "verified": result.verified,
        "attempts": result.attempts,
        "afi_before": result.afi_before,
        "afi_after": result.afi_after,
        "eas_before": result.eas_before,
        "eas_after": result.eas_after,
        "error": result.error,
    }


def _hex_byte(value: int | None) -> str:
    return "?" if value is None else f"0x{value:02X}"


def _item_line(item: ItemData | None) -> str:
    if item is None:
        return "no item data"
    parts = [f"item {item.primary_item_id}"]
    if item.owner_institution:
        parts.append(f"owner {item.owner_institution}")
    if item.set_info:
        parts.append(str(item.set_info))
    if item.type_of_usage is not None:
        parts.append(f"usage 0x{item.type_of_usage:02X}")
    if item.title:
        parts.append(repr(item.title))
    return ", ".join(parts)


def _tag_line(tag: Tag) -> str:
    line = f"{tag.uid_hex}  {tag.model}  {tag.security}  AFI {_hex_byte(tag.afi)}  "
    line += _item_line(tag.item)
    if tag.problem:
        line += f"  ({tag.problem})"
    return line


# ---------------------------------------------------------------- actions


def _emit(args: argparse.Namespace, data: object, text: str) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(text)


def _security(args: argparse.Namespace) -> SecurityConfig:
    from hardware.tags import SecurityConfig

    return SecurityConfig(
        secured_afi=args.secured_afi,
        unsecured_afi=args.unsecured_afi,
        use_afi=not args.no_afi,
        use_eas=args.eas,
    )


def _open_reader(args: argparse.Namespace) -> FeigReader:
    from hardware.feig import FeigReader
    from hardware.ports import LineSettings

    return FeigReader(
        args.url,
        address=args.address,
        timeout=args.timeout,
        line=LineSettings(baudrate=args.baud, parity=args.parity),
        block_order=args.block_order,
        auto_reconnect=False,
    )


def _reader_action(args: argparse.Namespace) -> int:
    from hardware.reader import parse_uid
    from hardware.rfid_ops import read_field, set_security

    security = _security(args) if args.action != "info" else None
    uid = parse_uid(args.uid) if args.action in ("secure", "unsecure") else None
    with _open_reader(args) as reader:
        if args.action == "info":
            info = reader.reader_info()
            address = reader.reader_address
            _emit(
                args,
                {
                    "address": address,
                    "software_version": info.software_version,
                    "software_revision": info.software_revision,
                    "driver_revision": info.driver_revision,
                    "hardware_type": info.hardware_type,
                    "software_type": info.software_type,
                    "transponder_types": info.transponder_types,
                },
                f"reader at address {_hex_byte(address)}: firmware {info.software_version}, "
                f"hardware type 0x{info.hardware_type:02X}, software type "
                f"0x{info.software_type:02X}, transponder types 0x{info.transponder_types:04X}",
            )
            return 0
        assert security is not None
        if args.action == "inventory":
            entries = reader.inventory(afi=args.afi)
            _emit(
                args,
                {"tags": [{"uid": e.uid_hex, "dsfid": e.dsfid} for e in entries]},
                "\n".join(f"{e.uid_hex}  DSFID 0x{e.dsfid:02X}" for e in entries)
                or "no tags in the field",
            )
            return 0
        if args.action == "read":
            reading = read_field(reader, security, afi=args.afi)
            lines = [_tag_line(tag) for tag in reading.tags]
            lines += [
                f"{lost.uid_hex}  LOST during {lost.stage}: {lost.error}" for lost in reading.lost
            ]
            _emit(args, _reading_dict(reading), "\n".join(lines) or "no tags in the field")
            return 0
        assert uid is not None
        result = set_security(
            reader, uid, secured=args.action == "secure", security=security, retries=args.retries
        )
        state = "secured" if result.secured else "unsecured"
        text = (
            f"{result.uid_hex} {state} and verified (attempts: {result.attempts})"
            if result.verified
            else f"{result.uid_hex} NOT {state}: {result.error}"
        )
        _emit(args, _security_dict(result), text)
        return 0 if result.verified else _EXIT_FAILED


def _decode(args: argparse.Namespace) -> int:
    from hardware.tags import DataModel, decode_28560_2, decode_28560_3, detect_model

    try:
        memory = bytes.fromhex(args.hex.replace(":", " "))
    except ValueError:
        raise ValueError(f"{args.hex[:40]!r} is not hexadecimal") from None
    if args.model == "2":
        model = DataModel.ISO28560_2
    elif args.model == "3":
        model = DataModel.ISO28560_3
    else:
        model = detect_model(None, memory)
    if model is DataModel.ISO28560_2:
        item = decode_28560_2(memory)
    elif model is DataModel.ISO28560_3:
        item = decode_28560_3(memory)
    else:
        raise ValueError(f"memory is {model}: not ISO 28560-2 or -3 library data")
    _emit(args, {"model": str(model), "item": _item_dict(item)}, f"{model}: {_item_line(item)}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from hardware.tags import DataModel, ItemData, encode_item

    model = DataModel.ISO28560_2 if args.model == "2" else DataModel.ISO28560_3
    item = ItemData(
        primary_item_id=args.item,
        owner_institution=args.isil,
        title=args.title,
        # Part 3 has no "absent" value for the type of usage; a new label is for lending.
        type_of_usage=0x10 if args.usage is None and args.model == "3" else args.usage,
    )
    memory = encode_item(item, model)
    _emit(
        args,
        {"model": str(model), "memory": memory.hex().upper(), "length": len(memory)},
        memory.hex(" ").upper(),
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Carry out one ``libedge rfid`` action; errors become one line on stderr and exit 1."""
    from hardware.reader import ReaderError

    try:
        if args.action == "decode":
            return _decode(args)
        if args.action == "encode":
            return _encode(args)
        return _reader_action(args)
    except (ReaderError, ValueError) as exc:
        # TagDataError and the reader's usage errors are ValueErrors; one line, no traceback.
        message = " ".join(str(exc).split())
        print(f"libedge rfid {args.action}: error: {message}", file=sys.stderr)
        return _EXIT_FAILED
