"""Typed errors from the API server's Status bodies, so callers write `except NotFound`."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer from the API server; `status` is its Kubernetes Status body."""

    def __init__(self, status: dict, code: int | None = None) -> None:
        self.status = status if isinstance(status, dict) else {}
        self.code = int(self.status.get("code") or code or 0)
        self.reason = self.status.get("reason", "")
        self.message = self.status.get("message", "") or f"HTTP {self.code}"
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    @property
    def causes(self) -> list[dict]:
        return (self.status.get("details") or {}).get("causes") or []


class NotFound(ApiError):
    pass


class AlreadyExists(ApiError):
    pass


class Conflict(ApiError):
    pass


class Gone(ApiError):
    """410: the resourceVersion asked for is compacted; relist."""


class Invalid(ApiError):
    pass


def error_for(status: dict, code: int) -> ApiError:
    reason = (status or {}).get("reason")
    if code == 404:
        return NotFound(status, code)
    if code == 409:
        return AlreadyExists(status, code) if reason == "AlreadyExists" else Conflict(status, code)
    if code == 410:
        return Gone(status, code)
    if code == 422:
        return Invalid(status, code)
    return ApiError(status, code)
