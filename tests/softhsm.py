"""A SoftHSM2 token for the tests (PKCS#11, the interface CloudHSM and other HSMs speak).

``softhsm`` is a session fixture: a fresh token in a temporary directory named by
``SOFTHSM2_CONF``, its PIN test-only. tests/conftest.py registers it once for the
whole suite: one token, one ``SOFTHSM2_CONF``, whichever package asks first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SOFTHSM_LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_LABEL = "shardvault-test"
TOKEN_PIN = "4321-test-pin"


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh SoftHSM2 token in a temporary directory (session-wide)."""
    if not Path(SOFTHSM_LIBRARY).exists() or shutil.which("softhsm2-util") is None:
        pytest.fail("SoftHSM2 is missing: run `bash scripts/system-deps.sh` (make system-deps)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
        "slots.mechanisms = ALL\nlibrary.reset_on_fork = false\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL,
         "--pin", TOKEN_PIN, "--so-pin", "8765-test-so"],
        check=True, capture_output=True, env=os.environ.copy(),
    )  # fmt: skip
    # SoftHSM reads SOFTHSM2_CONF once, at C_Initialize, and keeps its state per loaded
    # library. Loading a private copy of the module gives this fixture its own instance:
    # other tests' SoftHSM sessions in the same process are unaffected by our config,
    # and our "HSM goes away" test (C_Finalize on this copy) cannot touch theirs.
    library = root / "libsofthsm2.so"
    shutil.copyfile(Path(SOFTHSM_LIBRARY).resolve(), library)
    yield {"library": str(library), "token_label": TOKEN_LABEL, "pin": TOKEN_PIN}
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous
