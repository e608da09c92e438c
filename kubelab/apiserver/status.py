"""Every error the API server returns is a Kubernetes `Status`, never a framework body.

kubectl prints these as `Error from server (NotFound): ...` and `The Pod "x" is invalid: ...`;
a body of any other shape prints as an unhelpful generic message.
"""

from __future__ import annotations

from kubelab.resources import ResourceType

REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
    413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


class StatusError(Exception):
    """Raised anywhere in the server; rendered as a Status with `code`."""

    def __init__(self, code: int, message: str, *, reason: str | None = None,
                 details: dict | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details
        self.headers = headers

    def to_status(self) -> dict:
        return status_body(self.code, self.message, reason=self.reason, details=self.details)


def status_body(code: int, message: str, *, reason: str | None = None, details: dict | None = None) -> dict:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _details(rt: ResourceType, name: str | None) -> dict:
    d: dict = {"kind": rt.plural}
    if name:
        d["name"] = name
    if rt.group:
        d["group"] = rt.group
    return d


def not_found(rt: ResourceType, name: str) -> StatusError:
    return StatusError(404, f'{rt.group_resource} "{name}" not found', details=_details(rt, name))


def already_exists(rt: ResourceType, name: str) -> StatusError:
    return StatusError(409, f'{rt.group_resource} "{name}" already exists',
                       reason="AlreadyExists", details=_details(rt, name))


def conflict(rt: ResourceType, name: str, why: str | None = None) -> StatusError:
    msg = why or "the object has been modified; please apply your changes to the latest version and try again"
    return StatusError(409, f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {msg}',
                       reason="Conflict", details=_details(rt, name))


def invalid(rt: ResourceType, name: str, causes: list[dict]) -> StatusError:
    summary = ", ".join(f'{c["field"]}: {c["message"]}' if c.get("field") else c["message"] for c in causes)
    details = _details(rt, name)
    details["kind"] = rt.kind
    details["causes"] = causes
    return StatusError(422, f'{rt.kind} "{name}" is invalid: {summary}', details=details)


def gone(message: str) -> StatusError:
    return StatusError(410, message, reason="Expired")


def bad_request(message: str) -> StatusError:
    return StatusError(400, message)
