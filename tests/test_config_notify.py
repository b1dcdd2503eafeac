"""config: the [notify] keys of the heartbeat and the digest (the rest is in test_config.py)."""

from __future__ import annotations

import pytest

from blmonitor.config import Config, parse_config
from blmonitor.errors import ConfigError
from blmonitor.monitor.channels import Digest
from tests.test_config import DEFAULT_CONFIG, DEFAULTS


def parse(text: str) -> Config:
    return parse_config(text, source="test.toml", defaults=DEFAULTS)


def test_heartbeat_and_digest() -> None:
    got = parse('[notify]\nheartbeat_url = " https://hc-ping.com/0f6c7e1a "\ndigest = "weekly"')
    assert (got.notify.heartbeat_url, got.notify.digest) == (
        "https://hc-ping.com/0f6c7e1a",
        Digest.WEEKLY,
    )
    assert "0f6c7e1a" not in repr(got.notify)
    assert (DEFAULT_CONFIG.notify.heartbeat_url, DEFAULT_CONFIG.notify.digest) == ("", Digest.OFF)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # notify: the heartbeat URL is never echoed either, its path is the check's secret
        *[
            (
                f"[notify]\nheartbeat_url = {url}",
                "[notify] heartbeat_url: expected an http:// or https:// URL without spaces "
                "(e.g. https://hc-ping.com/<uuid> or an Uptime Kuma push URL)",
            )
            for url in (
                '"hc-ping.com/s3cr3t"',
                '"ftp://hc.example/s3cr3t"',
                '"https:///s3cr3t"',
                '"http://[::1/s3cr3t"',
                '"https://hc.example:99999/s3cr3t"',
                '"https://hc.example/s3 cr3t"',
            )
        ],
        (
            "[notify]\nheartbeat_url = 1",
            "[notify] heartbeat_url: expected a string, got the integer 1",
        ),
        (
            '[notify]\ndigest = "monthly"',
            "[notify] digest: 'monthly' is not one of off, daily, weekly",
        ),
    ],
)
def test_bad_values(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value) == f"test.toml: {message}"
