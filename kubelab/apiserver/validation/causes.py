"""The cause collector: `Causes` gathers StatusCauses `{reason, message, field}` with
field.Error's wording (Required value, Invalid value, Unsupported value, ...), so each
group module says *what* is wrong and this module says it the way upstream does.
`_dict`/`_list` read a field that may have the wrong JSON type (shapes.py has already
reported it) as an empty one, so the checks below never crash on hostile input.
"""

from __future__ import annotations

import json

from .formats import _is_int, MSG_PORT_RANGE


def _fmt(value) -> str:
    """How field.Error prints a value: strings quoted, numbers bare, the rest as JSON."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_int(value) or isinstance(value, float):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Causes(list):
    """A list of StatusCause dicts with the field.Error constructors of apimachinery."""

    def _add(self, reason: str, path: str, message: str) -> None:
        self.append({"reason": reason, "message": message, "field": path})

    def required(self, path: str, detail: str = "") -> None:
        self._add("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))

    def invalid(self, path: str, value, detail: str) -> None:
        self._add("FieldValueInvalid", path, f"Invalid value: {_fmt(value)}: {detail}")

    def not_supported(self, path: str, value, supported) -> None:
        values = ", ".join(json.dumps(s) for s in sorted(supported))
        self._add("FieldValueNotSupported", path,
                  f"Unsupported value: {_fmt(value)}: supported values: {values}")

    def duplicate(self, path: str, value) -> None:
        self._add("FieldValueDuplicate", path, f"Duplicate value: {_fmt(value)}")

    def forbidden(self, path: str, detail: str) -> None:
        self._add("FieldValueForbidden", path, f"Forbidden: {detail}")

    def not_found(self, path: str, value) -> None:
        self._add("FieldValueNotFound", path, f"Not found: {_fmt(value)}")

    def too_long(self, path: str, limit: int) -> None:
        self._add("FieldValueTooLong", path, f"Too long: must have at most {limit} bytes")

    def type_error(self, path: str, value, want: str) -> None:
        self._add("FieldValueTypeInvalid", path, f"Invalid value: {_fmt(value)}: must be {want}")

    def each(self, path: str, value, messages: list[str]) -> None:
        for m in messages:
            self.invalid(path, value, m)

    def enum(self, path: str, value, supported, *, required: bool = True) -> None:
        if value in (None, ""):
            if required:
                self.required(path)
        elif value not in supported:
            self.not_supported(path, value, supported)

    def nonneg(self, path: str, value) -> None:
        if value is None:
            return
        if not _is_int(value):
            self.type_error(path, value, "an integer")
        elif value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")

    def port(self, path: str, value, *, required: bool = True) -> None:
        if value in (None, 0):
            if required:
                self.required(path)
        elif not _is_int(value):
            self.type_error(path, value, "an integer")
        elif not 1 <= value <= 65535:
            self.invalid(path, value, MSG_PORT_RANGE)


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v) -> list:
    return v if isinstance(v, list) else []
