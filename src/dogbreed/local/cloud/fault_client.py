"""A client for the running local cloud's fault injection (the control API's `/faults` routes), used
by `dogbreed local fault` and the reliability tests.

    faults = FaultClient(state)
    fault = faults.add("aws", service="dynamodb", operation="PutItem", resource=table, count=None)
    ...
    faults.get(fault["id"])["hits"]
    faults.clear()
"""

from __future__ import annotations

from typing import Any

import httpx

from dogbreed.local.cloud.state import CloudState


class FaultError(RuntimeError):
    """The cloud refused the request (an invalid fault, an unknown id)."""


class FaultClient:
    def __init__(self, state: CloudState, *, timeout: float = 30.0) -> None:
        self._url = f"{state.control_url}/faults"
        self._timeout = timeout

    def add(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Inject a fault; `count=None` keeps it until cleared. Returns it with its id."""
        response = httpx.post(self._url, json={"kind": kind, **fields}, timeout=self._timeout)
        fault: dict[str, Any] = _checked(response)["fault"]
        return fault

    def faults(self) -> list[dict[str, Any]]:
        faults: list[dict[str, Any]] = _checked(httpx.get(self._url, timeout=self._timeout))["faults"]
        return faults

    def get(self, fault_id: str) -> dict[str, Any]:
        for fault in self.faults():
            if fault["id"] == fault_id:
                return fault
        raise FaultError(f"no fault {fault_id}")

    def clear(self, *fault_ids: str) -> list[dict[str, Any]]:
        """Remove the given faults, or every fault when none is named; returns what was removed."""
        removed: list[dict[str, Any]] = []
        if not fault_ids:
            return list(_checked(httpx.delete(self._url, timeout=self._timeout))["cleared"])
        for fault_id in fault_ids:
            response = httpx.delete(f"{self._url}/{fault_id}", timeout=self._timeout)
            removed += _checked(response)["cleared"]
        return removed


def _checked(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    if response.status_code >= 400:
        raise FaultError(str(body.get("error", response.text)))
    return body
