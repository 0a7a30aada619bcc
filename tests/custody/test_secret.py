"""SecretBytes keeps its value out of repr, str, format, pickling and equality."""

from __future__ import annotations

import logging
import pickle

import pytest

from shardvault.custody.envelope import OpenedShare, ShareAddress, ShareSlot
from shardvault.custody.secret import SecretBytes

VALUE = b"\x01top-secret-share\xff"


def test_never_printed(caplog: pytest.LogCaptureFixture) -> None:
    secret = SecretBytes(VALUE)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("t").info("value %s %r", secret, secret)
    opened = OpenedShare(ShareSlot(ShareAddress("w", "v", "k", "p"), 1), 0, secret)
    for text in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret:>40}",
        repr(opened),
        caplog.text,
    ):
        assert "top-secret" not in text
        assert VALUE.hex() not in text
    assert f"{len(VALUE)} bytes" in repr(secret)


def test_refuses_implicit_conversions() -> None:
    secret = SecretBytes(VALUE)
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(secret)
    with pytest.raises(TypeError, match="equals"):
        _ = secret == VALUE
    with pytest.raises(TypeError, match="reveal"):
        bytes(secret)
    with pytest.raises(TypeError):
        hash(secret)


def test_equals_reveal_view_and_wipe() -> None:
    secret = SecretBytes(VALUE)
    assert secret.equals(VALUE)
    assert secret.equals(SecretBytes(VALUE))
    assert not secret.equals(b"other")
    assert secret.reveal() == VALUE
    assert bytes(secret.view()) == VALUE
    buffer = secret._buffer
    secret.wipe()
    assert secret.wiped
    assert bytes(buffer) == bytes(len(VALUE))
    assert "wiped" in repr(secret)
    with pytest.raises(ValueError, match="wiped"):
        secret.reveal()


def test_context_manager_wipes() -> None:
    with SecretBytes(VALUE) as secret:
        assert len(secret) == len(VALUE)
    assert secret.wiped
    opened = OpenedShare(ShareSlot(ShareAddress("w", "v", "k", "p"), 1), 0, SecretBytes(VALUE))
    with opened:
        pass
    assert opened.share.wiped
