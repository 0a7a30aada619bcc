"""The CLI's waiting indicator for long server calls (key generation)."""

import sys
import time

import pytest

from shardvault.cli._output import waiting


def test_not_a_terminal_prints_the_label_once(capsys: pytest.CaptureFixture[str]) -> None:
    with waiting("generating keys"):
        pass
    captured = capsys.readouterr()
    assert captured.err == "generating keys...\n"
    assert captured.out == ""


def test_disabled_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with waiting("generating keys", enabled=False):
        pass
    assert capsys.readouterr().err == ""


def test_terminal_shows_elapsed_time_and_a_final_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with waiting("generating keys"):
        time.sleep(0.5)
    err = capsys.readouterr().err
    assert "\r| generating keys...   0." in err  # updated in place while waiting
    assert err.endswith(" s\n")
    assert "\r  generating keys: 0." in err
