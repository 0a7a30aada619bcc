"""moto's server with AWS KMS key-state rules added, for the kill-switch tests.

moto 5.2.5 lets a disabled key, or one pending deletion, encrypt and decrypt (see
``docs/environment.md``). AWS refuses both: ``DisabledException`` for a
disabled key and ``KMSInvalidStateException`` for one pending deletion (AWS KMS
Developer Guide, "Key states of AWS KMS keys"). This launcher wraps moto's KMS
``encrypt`` and ``decrypt`` (which GenerateDataKey and ReEncrypt also go through) with
that rule, then runs the normal moto server. Key policies are still not enforced.

Run: ``python -m tests.custody.moto_keystate -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.kms.models import KmsBackend


class _KeyStateError(JsonRESTError):
    code = 400


def _check_state(backend: KmsBackend, key_id: str) -> None:
    key = backend.keys[backend.any_id_to_key_id(key_id)]
    if key.key_state == "Disabled":
        raise _KeyStateError("DisabledException", f"{key.arn} is disabled.")
    if key.key_state != "Enabled":
        raise _KeyStateError("KMSInvalidStateException", f"{key.arn} is {key.key_state}.")


_encrypt, _decrypt = KmsBackend.encrypt, KmsBackend.decrypt


def _encrypt_checked(self: KmsBackend, key_id: str, *args: Any, **kwargs: Any) -> Any:
    _check_state(self, key_id)
    return _encrypt(self, key_id, *args, **kwargs)


def _decrypt_checked(self: KmsBackend, *args: Any, **kwargs: Any) -> Any:
    plaintext, arn = _decrypt(self, *args, **kwargs)
    _check_state(self, arn)
    return plaintext, arn


KmsBackend.encrypt = _encrypt_checked  # type: ignore[method-assign]
KmsBackend.decrypt = _decrypt_checked  # type: ignore[method-assign]


if __name__ == "__main__":
    from moto.server import main

    main()
