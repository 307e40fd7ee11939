"""A method's knobs: the fields of its config dataclass (type, default) plus what its
registration says of them (choices, range, help); configs from text (`parse_spec("prune:
structured:0.5:epochs=2")`) and back (`spec_of`), so every knob a page has is reachable from the
CLI, a pipeline step, a sweep point and a search trial."""

from __future__ import annotations

import re

import dataclasses
import typing
from typing import Any, Mapping

from compression import CompressionError


def _method(name: str):
    from compression.methods import get_method
    return get_method(name)


def _hints(config_type: type) -> dict[str, Any]:
    import sys
    module = sys.modules.get(config_type.__module__)
    return typing.get_type_hints(config_type, vars(module) if module else None)


def _base_type(hint: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) of an annotation such as `int | None`."""
    args = typing.get_args(hint)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else str), True
    return hint, False


def _type_name(hint: Any) -> str:
    base, optional = _base_type(hint)
    name = {int: "int", float: "float", bool: "bool", str: "str"}.get(base, "list")
    return name + (" | None" if optional else "")


def knob_schema(name: str) -> list[dict[str, Any]]:
    """The method's knobs: name, type, default, and choices / min / max / help where registered."""
    method = _method(name)
    hints = _hints(method.config_type)
    out = []
    for f in dataclasses.fields(method.config_type):
        if not f.init or f.name.startswith("_"):
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        entry = {"name": f.name, "type": _type_name(hints.get(f.name, str)), "default": default,
                 "positional": f.name in method.positional}
        entry.update(method.knobs.get(f.name, {}))
        out.append(entry)
    return out


def describe(name: str) -> dict[str, Any]:
    method = _method(name)
    return {"method": name, "family": method.family, "help": method.help,
            "usage": f"{name}:" + ":".join(f"<{p}>" for p in method.positional) if method.positional else name,
            "knobs": knob_schema(name)}


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _coerce(method: str, key: str, value: Any, hint: Any) -> Any:
    base, optional = _base_type(hint)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if optional and text.lower() in ("none", "null", ""):
        return None
    try:
        if base is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if base is int:
            return int(text)
        if base is float:
            return float(text)
    except ValueError:
        raise CompressionError(f"{method}: {key}={text!r} is not {'a' if base is not int else 'an'} "
                               f"{_type_name(hint).split(' ')[0]}") from None
    if base is str or base is Any:
        return text
    import json
    try:
        return _tuples(json.loads(text))
    except ValueError:
        raise CompressionError(f"{method}: {key}={text!r} is not valid JSON") from None


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def make_config(name: str, values: Mapping[str, Any] | None = None) -> Any:
    """A method's config from plain values (text is converted to each field's type); unknown keys
    and bad values are refused with a message naming them."""
    method = _method(name)
    hints = _hints(method.config_type)
    known = {f.name for f in dataclasses.fields(method.config_type) if f.init}
    kwargs = {}
    for key, value in (values or {}).items():
        if key not in known:
            raise CompressionError(f"{name}: unknown knob {key!r}; knobs: {', '.join(sorted(known))}")
        kwargs[key] = _coerce(name, key, value, hints.get(key, str))
    try:
        return method.config_type(**kwargs)
    except TypeError as exc:
        raise CompressionError(f"{name}: {exc}") from None


_KEY = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=")  # key=value; "resnet18?weights=..." continues a reference


def parse_spec(text: str) -> tuple[Any, Any]:
    """'prune:structured:0.5:epochs=2' -> (the prune method, its config). Positional knobs come
    first; a value may contain ':' (distill:1:teacher=torchvision:resnet18)."""
    if not isinstance(text, str) or not text.strip():
        raise CompressionError(f"empty method spec {text!r}")
    name, *parts = [p.strip() for p in text.strip().split(":")]
    method = _method(name)
    values: dict[str, str] = {}
    positional = list(method.positional)
    key = None  # the last key=value's key: a part after it without "=" continues its value, since
    #             values may hold ':' (teacher=torchvision:resnet18, entry:<name>, a JSON object)
    for part in parts:
        if "=" in part and _KEY.match(part):
            key, _, value = part.partition("=")
            key = key.strip()
            values[key] = value
        elif key is not None:
            values[key] += ":" + part
        elif positional:
            values[positional.pop(0)] = part
        else:
            raise CompressionError(f"{text!r}: {part!r} has no key; write key=value "
                                   f"(knobs: {', '.join(k['name'] for k in knob_schema(name))})")
    return method, make_config(name, values)


def spec_of(name: str, config: Any) -> str:
    """The text `parse_spec` turns back into `config`."""
    method = _method(name)
    if method.spec is not None:
        return method.spec(config)
    parts = [name]
    defaults = method.config_type()
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in method.positional:
            parts.append(f"{value:g}" if isinstance(value, float) else str(value))
        elif f.init and value != getattr(defaults, f.name):
            parts.append(f"{f.name}={_text(value)}")
    return ":".join(parts)


def _text(value: Any) -> str:
    import json
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
