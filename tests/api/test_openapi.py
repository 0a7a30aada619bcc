"""The checked-in OpenAPI document is what the code serves."""

import json
from pathlib import Path

import httpx
from scripts.export_openapi import OUTPUT, openapi_document


def test_checked_in_openapi_matches_the_app() -> None:
    assert OUTPUT == Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
    assert OUTPUT.read_text() == openapi_document(), (
        "docs/openapi.json is stale: run python scripts/export_openapi.py"
    )


def test_served_document_is_the_same(server_url: str) -> None:
    served = httpx.get(f"{server_url}/v1/openapi.json").json()
    assert served == json.loads(OUTPUT.read_text())
    assert served["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert served["paths"]["/v1/health"]["get"]["security"] == []
    assert served["paths"]["/v1/cosigners/pair"]["post"]["security"] == []
    for path, operations in served["paths"].items():
        for method, operation in operations.items():
            if method == "post" and operation.get("security") != []:
                # Signed requests that change state take an Idempotency-Key; pairing,
                # unsigned, is idempotent by itself (a token pairs one identity once).
                names = {p["name"] for p in operation.get("parameters", [])}
                assert "Idempotency-Key" in names, path
