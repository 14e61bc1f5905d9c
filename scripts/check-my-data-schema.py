#!/usr/bin/env python3
"""Checks a patient's data export against its published JSON Schema: the schema
(docs/public/my-data.schema.json, or the first argument) must be a valid JSON Schema 2020-12,
and the export (target/tmp/my-data.json, or the second argument) valid against it. The export
is the one `tests/data_rights.rs` downloads from `GET /cabinet/my-data.json` and writes there,
so run this after `cargo test`. Exits 1 with a list of what is wrong."""

import json
import sys

from jsonschema import Draft202012Validator


def main() -> int:
    schema_path = sys.argv[1] if len(sys.argv) > 1 else "docs/public/my-data.schema.json"
    export_path = sys.argv[2] if len(sys.argv) > 2 else "target/tmp/my-data.json"
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    try:
        with open(export_path, encoding="utf-8") as f:
            export = json.load(f)
    except FileNotFoundError:
        print(
            f"check-my-data-schema: {export_path} is missing; it is written by the test "
            "data_rights::the_export_holds_everything_about_the_patient_and_nothing_about_another",
            file=sys.stderr,
        )
        return 1
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(export), key=lambda e: list(e.path))
    if errors:
        print(f"check-my-data-schema: {export_path} does not fit {schema_path}:", file=sys.stderr)
        for error in errors:
            where = "/".join(str(p) for p in error.path) or "(root)"
            print(f"  at {where}: {error.message}", file=sys.stderr)
        return 1
    print(f"check-my-data-schema: {export_path} is valid against {schema_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
