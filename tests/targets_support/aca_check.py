#!/usr/bin/env python3
"""Offline validation of `chaoslab export aca`, driven by tests/targets_aca.rs.

  aca_check.py bicep FILE...   parse each file with pycep-parser (PyPI) and
                               print {file: parsed document} as JSON; exit 1
                               naming the first file that does not parse.
  aca_check.py yaml FILE       load a Container App YAML and check that every
                               key, recursively, is a field of the Container
                               Apps API model (PyPI azure-mgmt-appcontainers):
                               deserialising would silently drop an unknown
                               key, so each key is looked up in the models'
                               attribute maps instead. Prints {"unknown": [...],
                               "checked": N, "document": the YAML as JSON};
                               exit 1 if any key is unknown.

Both model generations are understood: msrest models (`_attribute_map`,
keys such as "properties.template" flattened with dots) and the newer
TypeSpec models (`rest_field`s with type annotations).
"""

import json
import sys
import typing
from pathlib import Path


def parse_bicep(paths):
    from pycep import BicepParser

    parser = BicepParser()
    out = {}
    for path in paths:
        try:
            out[path] = parser.parse(file_path=Path(path))
        except Exception as exc:  # pycep raises lark errors of several kinds
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"{path}: does not parse: {first}", file=sys.stderr)
            return 1
    json.dump(out, sys.stdout, default=str)
    return 0


# ---- the Container Apps API model -------------------------------------------------

def _models():
    from azure.mgmt.appcontainers import models

    return models


def _is_model(cls):
    return isinstance(cls, type) and (hasattr(cls, "_attribute_map") or getattr(cls, "_is_model", False))


class Field:
    """What a key may hold: a model, a list of something, a dict of something, or a scalar."""

    def __init__(self, kind, inner=None):
        self.kind = kind  # "model", "list", "dict", "scalar", "any"
        self.inner = inner


def _field_from_msrest(type_name):
    models = _models()
    if type_name.startswith("[") and type_name.endswith("]"):
        return Field("list", _field_from_msrest(type_name[1:-1]))
    if type_name.startswith("{") and type_name.endswith("}"):
        return Field("dict", _field_from_msrest(type_name[1:-1]))
    cls = getattr(models, type_name, None)
    if _is_model(cls):
        return Field("model", cls)
    if type_name == "object":
        return Field("any")
    return Field("scalar")


def _field_from_annotation(annotation):
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union:
        fields = [_field_from_annotation(a) for a in args if a is not type(None)]
        for f in fields:  # a model (or collection) wins over str in Union[str, Enum]
            if f.kind != "scalar":
                return f
        return Field("scalar")
    if origin in (list, typing.List):
        return Field("list", _field_from_annotation(args[0]) if args else Field("any"))
    if origin in (dict, typing.Dict):
        return Field("dict", _field_from_annotation(args[1]) if len(args) == 2 else Field("any"))
    if annotation is typing.Any or annotation is object:
        return Field("any")
    if _is_model(annotation):
        return Field("model", annotation)
    return Field("scalar")


def model_tree(cls):
    """{key: Field or nested dict} for a model: msrest flattened keys
    ("properties.configuration") become nested dicts."""
    tree = {}
    if hasattr(cls, "_attribute_map"):
        for spec in cls._attribute_map.values():
            parts = [p.replace("\\.", ".") for p in _split_flattened(spec["key"])]
            node = tree
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = _field_from_msrest(spec["type"])
        return tree
    models = _models()
    module = sys.modules[cls.__module__]
    namespace = dict(vars(module))
    namespace["_models"] = models
    hints = {}
    for klass in reversed(cls.__mro__):
        if not _is_model(klass):
            continue
        try:
            hints.update(typing.get_type_hints(klass, globalns=namespace))
        except Exception:
            hints.update(getattr(klass, "__annotations__", {}))
        for attr, value in vars(klass).items():
            if attr.startswith("_") or not hasattr(value, "_rest_name_input"):
                continue
            rest = value._rest_name_input or attr
            tree[rest] = _field_from_annotation(hints.get(attr, typing.Any))
    return tree


def _split_flattened(key):
    parts, current, i = [], "", 0
    while i < len(key):
        if key[i] == "\\" and i + 1 < len(key):
            current += key[i : i + 2]
            i += 2
            continue
        if key[i] == ".":
            parts.append(current)
            current = ""
        else:
            current += key[i]
        i += 1
    parts.append(current)
    return parts


def check(value, shape, path, unknown, counter):
    """Walk `value` against `shape` (a Field or a tree dict)."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            unknown.append(f"{path or '<root>'}: expected an object, found {type(value).__name__}")
            return
        for key, child in value.items():
            counter[0] += 1
            where = f"{path}.{key}" if path else str(key)
            if key not in shape:
                unknown.append(where)
                continue
            check(child, shape[key], where, unknown, counter)
        return
    if shape.kind == "any" or value is None:
        return
    if shape.kind == "model":
        check(value, model_tree(shape.inner), path, unknown, counter)
    elif shape.kind == "list":
        if not isinstance(value, list):
            unknown.append(f"{path}: expected a list, found {type(value).__name__}")
            return
        for i, item in enumerate(value):
            check(item, shape.inner, f"{path}[{i}]", unknown, counter)
    elif shape.kind == "dict":
        if not isinstance(value, dict):
            unknown.append(f"{path}: expected an object, found {type(value).__name__}")
            return
        for key, item in value.items():
            check(item, shape.inner, f"{path}[{key!r}]", unknown, counter)
    elif isinstance(value, (dict, list)):
        unknown.append(f"{path}: expected a single value, found {type(value).__name__}")


def check_yaml(path):
    import yaml

    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    unknown, counter = [], [0]
    check(doc, Field("model", _models().ContainerApp), "", unknown, counter)
    json.dump({"unknown": unknown, "checked": counter[0], "document": doc}, sys.stdout)
    return 1 if unknown else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "bicep":
        return parse_bicep(argv[1:])
    if len(argv) == 2 and argv[0] == "yaml":
        return check_yaml(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
