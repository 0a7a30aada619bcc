"""The CLI's progress bar for long server calls (key generation)."""

import sys
import time

import pytest

from shardvault.cli._output import progress_bar, render_bar


def test_not_a_terminal_prints_the_label_then_the_last_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress_bar("key generation") as update:
        update(3, 12, "ecdsa-secp256k1")
        update(12, 12, "done")
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == "key generation..."
    assert lines[1].startswith("key generation [" + "#" * 30 + "] 12/12 done ")
    assert len(lines) == 2
    assert captured.out == ""


def test_disabled_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar("key generation", enabled=False) as update:
        update(1, 2, "x")
    assert capsys.readouterr().err == ""


def test_terminal_redraws_in_place_with_the_steps_and_elapsed_time(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with progress_bar("key generation") as update:
        update(6, 24, "ecdsa-secp256k1")
        time.sleep(0.5)
        update(24, 24, "done")
    err = capsys.readouterr().err
    assert "\rkey generation [" + "#" * 7 + "." * 23 + "] 6/24 ecdsa-secp256k1   0." in err
    assert err.endswith(" s\n")
    assert err.rsplit("\r", 1)[1].startswith("key generation [" + "#" * 30 + "] 24/24 done")


@pytest.mark.parametrize(
    ("done", "total", "filled", "shown"),
    [(0, 0, 0, "0/1"), (5, 4, 30, "4/4"), (-1, 10, 0, "0/10"), (1, 3, 10, "1/3")],
)
def test_a_bar_never_overflows_or_divides_by_zero(
    done: int, total: int, filled: int, shown: str
) -> None:
    line = render_bar("k", done, total, "", 1.0)
    assert line == f"k [{'#' * filled}{'.' * (30 - filled)}] {shown}   1.0 s"
