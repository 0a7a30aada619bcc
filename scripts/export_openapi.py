"""Write the API's OpenAPI document to docs/openapi.json (or check it is current).

Usage: ``python scripts/export_openapi.py`` to regenerate, ``--check`` to exit 1 when the
checked-in file differs from what the code produces.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from shardvault.api import create_app
from shardvault.audit import AuditSigner
from shardvault.service.platform import Platform
from shardvault.store import Database

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def openapi_document() -> str:
    """The OpenAPI document as stable, pretty-printed JSON text."""
    with tempfile.TemporaryDirectory() as scratch:
        # The schema does not depend on the database; a throwaway one satisfies the factory.
        database = Database(f"sqlite:///{scratch}/schema.db")
        try:
            app = create_app(Platform(database, AuditSigner.generate()))
            return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
        finally:
            database.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    document = openapi_document()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != document:
            print(f"{OUTPUT} is out of date: run python scripts/export_openapi.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(document)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
