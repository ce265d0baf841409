"""Whether a JSON value has the shape an /openapi.json schema declares for it.

Enough of JSON Schema for what FastAPI writes: `$ref`, `anyOf`, `type`, `enum`, `properties`,
`required`, `additionalProperties`, `items`, `maxItems`. Stricter than JSON Schema in one way, on
purpose: an object may carry only the keys its schema lists, unless the schema says
`additionalProperties`, so a key the server sends but the document leaves out is a problem too.
"""

from typing import Any

import httpx

JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def problems(value: Any, schema: dict[str, Any], document: dict[str, Any], at: str) -> list[str]:
    """What is wrong with `value` at path `at` against `schema`; empty when it conforms."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return problems(value, document["components"]["schemas"][name], document, at)
    if "anyOf" in schema:
        tries = [problems(value, option, document, at) for option in schema["anyOf"]]
        return [] if [] in tries else [f"{at}: fits no anyOf option", *min(tries, key=len)]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{at}: {value!r} is not one of {schema['enum']}"]
    kind = schema.get("type")
    if kind is None:
        return []  # any value
    if isinstance(value, bool) and kind in {"integer", "number"}:
        return [f"{at}: {value!r} is a boolean, not an {kind}"]
    if not _has_type(value, kind):
        return [f"{at}: {value!r} is not of type {kind}"]
    if kind == "object":
        return _object_problems(value, schema, document, at)
    if kind == "array":
        found = [
            problem
            for index, item in enumerate(value)
            for problem in problems(item, schema.get("items", {}), document, f"{at}[{index}]")
        ]
        if len(value) > schema.get("maxItems", len(value)):
            found.append(f"{at}: more than {schema['maxItems']} items")
        return found
    return []


def _has_type(value: Any, kind: str) -> bool:
    return isinstance(value, JSON_TYPES[kind])


def _object_problems(
    value: dict[str, Any], schema: dict[str, Any], document: dict[str, Any], at: str
) -> list[str]:
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", False)
    required = schema.get("required", [])
    found = [f"{at}: required key {key!r} is missing" for key in required if key not in value]
    for key, item in value.items():
        if key in properties:
            found += problems(item, properties[key], document, f"{at}.{key}")
        elif isinstance(extra, dict):
            found += problems(item, extra, document, f"{at}.{key}")
        elif not extra:
            found.append(f"{at}: key {key!r} is not in the document")
    return found


def check_answer(
    document: dict[str, Any], method: str, template: str, response: httpx.Response
) -> None:
    """Assert that the operation declares the answer's status, and its JSON body the schema."""
    operation = document["paths"][template][method.lower()]
    declared = operation["responses"]
    status = str(response.status_code)
    assert status in declared, f"{operation['operationId']} answered {status}, not declared"
    schema = declared[status].get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        found = problems(response.json(), schema, document, "body")
        assert not found, f"{operation['operationId']} {status}: {found}"
