"""OCSF 1.8.0 JSON schemas for the tests, compiled from ../shared/ocsf-schema (the schema source).

`ocsf-lib` (the OCSF project's Python tools) compiles the source into a schema, as the OCSF server
does; `ocsf-json-schema` turns a compiled class (with the profiles an event declares) into a JSON
schema with every object embedded; `jsonschema` validates. The only glue here turns ocsf-lib's output
into the server's export shape that ocsf-json-schema reads: nulls dropped, and attributes whose type
names an object written as ``type: object_t`` + ``object_type``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jsonschema
from ocsf.compile.compiler import Compilation
from ocsf.compile.options import CompilationOptions
from ocsf.repository import read_repo
from ocsf.schema import to_dict
from ocsf_json_schema import OcsfJsonSchemaEmbedded

SCHEMA_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "ocsf-schema"


def _clean(o: object) -> object:
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items() if v is not None}
    if isinstance(o, list):
        return [_clean(v) for v in o]
    return o


@functools.lru_cache(maxsize=1)
def compiled() -> dict:
    repo = read_repo(str(SCHEMA_SOURCE), preserve_raw_data=False)
    schema = _clean(to_dict(Compilation(repo, CompilationOptions()).build()))
    assert isinstance(schema, dict) and schema["version"] == "1.8.0"
    objects = schema["objects"]
    for group in (schema["classes"], objects):
        for d in group.values():
            for a in d.get("attributes", {}).values():
                if a.get("type") in objects:
                    a["object_type"], a["type"] = a["type"], "object_t"
    return schema


@functools.lru_cache(maxsize=None)
def validator(class_uid: int, profiles: tuple[str, ...]) -> jsonschema.Draft202012Validator:
    gen = OcsfJsonSchemaEmbedded(compiled())
    js = gen.get_class_schema(gen.lookup_class_name_from_uid(class_uid), list(profiles))
    jsonschema.Draft202012Validator.check_schema(js)
    return jsonschema.Draft202012Validator(js, format_checker=jsonschema.FormatChecker())


def errors(event: dict) -> list[str]:
    """Every way `event` breaks the OCSF schema of its class and declared profiles ([] when valid)."""
    v = validator(event["class_uid"], tuple(sorted(event.get("metadata", {}).get("profiles", []))))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(event)]
