"""The MIME pre-split (blmonitor.bounces._fastmime) against the stdlib parser it stands in for.

`mime.parse_tree(data)` must give the walk of `extract` what `email.message_from_bytes(data,
policy=compat32)` gives: the same delivery-status blocks, texts, returned Message-ID and Date;
and the records of the whole corpus must be the same with the stdlib parser alone (the oracle).
"""

from __future__ import annotations

import email
import email.message
import email.parser
import random
from email.policy import compat32
from pathlib import Path

import pytest

from blmonitor.bounces import _fastmime, mailbox, mime
from blmonitor.bounces import extract as X

DATA = Path(__file__).parent / "data"
BOUNCES = DATA / "bounces"
CORPUS = Path(__file__).parents[2] / "shared" / "corpus" / "sisimai-set-of-emails"


def _view(msg: email.message.Message) -> tuple[object, ...]:
    parts = X._Parts()
    X._walk(msg, parts)
    return parts.dsn_blocks, parts.texts, parts.message_id, str(msg.get("Date", ""))


def _same(data: bytes) -> bool:
    data = mime.normalise(data)
    return _view(email.message_from_bytes(data, policy=compat32)) == _view(mime.parse_tree(data))


def _samples() -> list[bytes]:
    roots = [BOUNCES, CORPUS / "maildir", CORPUS / "mailbox"]
    out: list[bytes] = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            out += [c for _, c in mailbox.parse_mbox(data)] if mailbox.is_mbox(data) else [data]
    return out


SAMPLES = _samples()
LINES = [
    b"", b"--", b"From x", b"From x: y", b" cont", b"\t", b": nohdr", b"garbage line",
    b"Content-Type: text/plain", b"Content-Type: message/rfc822", b"Content-Type: message/partial",
    b"Content-Type: message/feedback-report", b"Content-Type: message/global-delivery-status",
    b"Content-Type: multipart/mixed; boundary=zz", b"Content-Type: multipart/alternative",
    b"Content-Type: multipart/digest; boundary=dd", b"--zz", b"--zz--", b"--dd",
    b"Content-Type: message/delivery-status", b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable", b"Message-ID: <m@x>", b"message-id : <y@x>",
    b"MESSAGE-ID:<z@x>", b"Date: Tue, 1 Jan 2019 00:00:00 +0000",
    b"Final-Recipient: rfc822; a@b.example",
    b"Action: failed", b"Status: 5.7.1", b"Diagnostic-Code: smtp; 550 no", b"Remote-MTA : dns; x",
    b"x\xff\xfe", b"=41=42", b"QUJD",
]  # fmt: skip


def test_presplit_same_tree_on_samples() -> None:
    assert SAMPLES
    assert [i for i, data in enumerate(SAMPLES) if not _same(data)] == []


@pytest.mark.parametrize("seed", range(4))
def test_presplit_same_tree_on_mutations(seed: int) -> None:
    rng = random.Random(seed)
    bad = []
    for n, base in enumerate(SAMPLES[seed::4]):
        lines = mime.normalise(base).split(b"\n")
        bounds = [line[2:] for line in lines if line.startswith(b"--") and len(line) > 4][:3]
        for _ in range(3):
            mutated = list(lines)
            for _ in range(rng.randrange(1, 8)):
                pos = rng.randrange(len(mutated) + 1)
                if bounds and rng.random() < 0.4:
                    b = rng.choice(bounds)
                    line = rng.choice(
                        [b"--" + b, b"--" + b + b"--", b"--" + b + b" \t", b"--" + b + b"x"]
                    )
                else:
                    line = rng.choice(LINES)
                mutated.insert(pos, line)
            if not _same(b"\n".join(mutated)):
                bad.append(n)
    assert bad == []


@pytest.mark.slow
def test_presplit_same_tree_on_swapped_types() -> None:
    swaps = [
        (b"message/delivery-status", b"message/global-delivery-status"),
        (b"message/delivery-status", b"message/feedback-report"),
        (b"message/rfc822", b"message/partial"),
        (b"text/rfc822-headers", b"message/rfc822"),
        (b"multipart/alternative", b"multipart/digest"),
        (b"boundary=", b'boundary=""; x='),
        (b"boundary=", b"xboundary="),
    ]
    bad = []
    for n, base in enumerate(SAMPLES):
        data = mime.normalise(base)
        for old, new in swaps:
            if (i := data.lower().find(old)) >= 0 and not _same(
                data[:i] + new + data[i + len(old) :]
            ):
                bad.append((n, new))
    assert bad == []


def test_header_block_reads_fields_as_feedparser() -> None:
    parser = email.parser.Parser(policy=compat32)
    pieces = [
        "From ", "From x y", "Date: ", "date:", "Date :", "DATE:  Mon", "Message-ID:",
        "message-id: <a@b>", "Message-Id:\t<c@d>", "Content-Type: text/plain",
        "content-type:multipart/mixed; boundary=x", "Content-Transfer-Encoding: base64", " cont",
        "\tcont2", "", ": colon0", "X-Foo: bar", "not a header", "Date: \udcff", "Date:  ", "  ",
        "Date: a:b:c", "From: me", "Received: by x;\n\t1 Jan", "x:",
    ]  # fmt: skip
    fields = ("content-type", "content-transfer-encoding", "date", "message-id")
    rng = random.Random(11)
    for _ in range(20_000):
        lines = [rng.choice(pieces) for _ in range(rng.randrange(0, 9))]
        text = "\n".join(lines) + rng.choice(["", "\n", "\n\n", "\nbody\n", "\n\nbody\nmore\n"])
        ref = parser.parsestr(text, headersonly=True)
        msg, body = _fastmime.header_block(text)
        assert [str(msg.get(f)) for f in fields] == [str(ref.get(f)) for f in fields], text
        assert body == vars(ref)["_payload"], text  # (get_payload() replaces escapes)


def _stdlib_tree(data: bytes) -> email.message.Message:
    """The oracle: `mime.parse_tree` without its fast path."""
    return mime.stdlib_tree(data.decode("ascii", errors="surrogateescape"))


def _messages(roots: list[Path]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            if mailbox.is_mbox(data):
                out += [(f"{path}:{n}", chunk) for n, chunk in mailbox.parse_mbox(data)]
            else:
                out.append((str(path), data))
    return out


def test_records_same_as_with_the_stdlib_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every message of the test data and of the whole shared corpus gives the same records
    through the pre-split as through the stdlib parser alone."""
    with_corpus = CORPUS.is_dir()  # beside the checkout in CI; a bare clone has the test data
    messages = _messages([BOUNCES, *([CORPUS] if with_corpus else [])])
    assert len(messages) > (900 if with_corpus else 75)
    fast = [X.extract_records(data, source=name) for name, data in messages]
    monkeypatch.setattr(X, "parse_tree", _stdlib_tree)
    slow = [X.extract_records(data, source=name) for name, data in messages]
    assert [name for (name, _), a, b in zip(messages, fast, slow, strict=True) if a != b] == []
    assert sum(map(len, fast)) > (900 if with_corpus else 70)
