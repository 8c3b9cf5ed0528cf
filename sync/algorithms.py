"""Plug-in points ("algorithm spots") and the registry that binds algorithm codes to functions.

The source system lets administrators choose, per plug-in point, which algorithm runs. Here the
*catalogue* below lists every code the product implements per spot; the admin configuration may
only name codes from it (an unknown code is a configuration error at load time, before anything
runs). Domain modules bind their functions to catalogue codes with :func:`AlgorithmRegistry.bind`
(usually through the :meth:`AlgorithmRegistry.implements` decorator), so adding an algorithm is a
catalogue line plus a function with its registry line.

This module is pure: it holds no I/O and imports nothing from the adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar


class Spot(StrEnum):
    """Where in a process an administrator-chosen algorithm runs."""

    SA_STOP = "sa_stop"
    FIELDWORK = "fieldwork"
    REVERSION = "reversion"
    IMMEDIATE_STOP = "immediate_stop"
    SA_CANCEL_TODO = "sa_cancel_todo"
    ADJUSTMENT_CANCEL_TODO = "adjustment_cancel_todo"
    PERSON_INFO = "person_info"
    ACCOUNT_INFO = "account_info"
    SA_TYPE_INFO = "sa_type_info"
    US_INFO = "us_info"
    PERSON_NAME_VALIDATION = "person_name_validation"
    US_VALIDATION = "us_validation"


CATALOGUE: dict[Spot, dict[str, str]] = {
    Spot.SA_STOP: {
        "NB-SAST": "remove the stopped SA from its non-billed budget; expire an empty budget",
        "C2M-SAST-RF": "refund a service credit fee as a credit adjustment",
    },
    Spot.FIELDWORK: {
        "C2M-SASPFWCR": "create start/stop field activities per SP from the SP type profile",
    },
    Spot.REVERSION: {
        "C2M-LL-REV": "revert a vacated premise to the landlord agreement",
    },
    Spot.IMMEDIATE_STOP: {
        "C1-SAIS-ST": "stop at once when no fieldwork is outstanding and the date is reached",
    },
    Spot.SA_CANCEL_TODO: {
        "C2M-SACA-CRT": "raise a To Do when an SA is canceled",
    },
    Spot.ADJUSTMENT_CANCEL_TODO: {
        "CMCA-CRDT": "raise a To Do when a credit adjustment is canceled",
    },
    Spot.PERSON_INFO: {"C2MPERS-INFO": "person name and primary phone"},
    Spot.ACCOUNT_INFO: {"C1-ACCT-INFO": "account id, customer class, main person and bill cycle"},
    Spot.SA_TYPE_INFO: {"C2M-SAT-INFO": "SA type, status, dates and premise"},
    Spot.US_INFO: {"D2-USINFO": "US type, status, external id, SP count and period"},
    Spot.PERSON_NAME_VALIDATION: {
        "C2M-PERNMVAL": "persons as LAST,FIRST; business names free form",
    },
    Spot.US_VALIDATION: {
        "D1-DEFTIMZON": "default a blank time zone",
        "D2-VALUSTMZN": "time zone valid and consistent",
        "D2-USSPDTVAL": "SP link dates and cross-US SP overlap",
        "D2-USUGDTVAL": "usage group periods",
        "D2-USFOVAL": "factor overrides",
        "D2-VAL-SUBUS": "sub US and master US",
        "D2-VALUSMC": "measuring components on the direct channel",
        "D2-USINFO": "info string",
    },
}


class UnknownAlgorithmError(LookupError):
    """A code that the catalogue does not list for a spot, or that no function implements."""


F = TypeVar("F", bound=Callable[..., Any])


class AlgorithmRegistry:
    """Maps (spot, code) to the function that implements it."""

    def __init__(self, catalogue: dict[Spot, dict[str, str]] | None = None) -> None:
        self._catalogue = catalogue if catalogue is not None else CATALOGUE
        self._functions: dict[tuple[Spot, str], Callable[..., Any]] = {}

    def known_codes(self, spot: Spot) -> frozenset[str]:
        return frozenset(self._catalogue.get(spot, {}))

    def bind(self, spot: Spot, code: str, function: Callable[..., Any]) -> None:
        if code not in self._catalogue.get(spot, {}):
            raise UnknownAlgorithmError(f"algorithm {code!r} is not in the catalogue of {spot}")
        existing = self._functions.get((spot, code))
        if existing is not None and existing is not function:
            raise ValueError(f"algorithm {code!r} of {spot} is already bound to {existing!r}")
        self._functions[(spot, code)] = function

    def implements(self, spot: Spot, code: str) -> Callable[[F], F]:
        """Decorator form of :meth:`bind`."""

        def decorate(function: F) -> F:
            self.bind(spot, code, function)
            return function

        return decorate

    def get(self, spot: Spot, code: str) -> Callable[..., Any]:
        try:
            return self._functions[(spot, code)]
        except KeyError:
            raise UnknownAlgorithmError(
                f"no function implements algorithm {code!r} of {spot}"
            ) from None

    def unbound(self) -> list[tuple[Spot, str]]:
        """Catalogue entries that no function implements yet."""
        return [
            (spot, code)
            for spot, codes in self._catalogue.items()
            for code in codes
            if (spot, code) not in self._functions
        ]


registry = AlgorithmRegistry()
