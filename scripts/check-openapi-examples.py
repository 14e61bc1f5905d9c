#!/usr/bin/env python3
"""Checks the examples of the OpenAPI document (docs/public/openapi.json, or the file given):
every request body and every success answer with content has an example (except the document's
own endpoint), and every example is valid against its schema (JSON Schema 2020-12, as OpenAPI
3.1 uses, with the document's components). Exits 1 with a list of what is wrong."""

import json
import sys

from jsonschema import Draft202012Validator

SKIP = {"/api/v1/openapi.json"}


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "docs/public/openapi.json"
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    components = document.get("components", {})
    problems: list[str] = []
    checked = 0

    def check(name: str, content: dict) -> None:
        nonlocal checked
        for media, body in content.items():
            if "example" not in body:
                problems.append(f"{name} ({media}): no example")
                continue
            # The schema with the document's components beside it, so that
            # "#/components/schemas/…" resolves inside one resource.
            schema = dict(body.get("schema", {}))
            schema["components"] = components
            validator = Draft202012Validator(schema)
            errors = sorted(validator.iter_errors(body["example"]), key=lambda e: list(e.path))
            for error in errors:
                where = "/".join(str(p) for p in error.path) or "(root)"
                problems.append(f"{name} ({media}) example at {where}: {error.message}")
            checked += 1

    for url, item in document.get("paths", {}).items():
        if url in SKIP:
            continue
        for method, operation in item.items():
            name = f"{method.upper()} {url}"
            request = operation.get("requestBody", {}).get("content")
            if request:
                check(f"{name} request", request)
            for status, response in operation.get("responses", {}).items():
                if status.startswith("2") and response.get("content"):
                    check(f"{name} {status}", response["content"])

    if problems:
        print("check-openapi-examples: the examples do not fit the document:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"check-openapi-examples: {checked} examples, each valid against its schema")
    return 0


if __name__ == "__main__":
    sys.exit(main())
