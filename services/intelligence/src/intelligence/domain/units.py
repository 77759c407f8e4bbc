"""Lab results in another unit than a criterion's, converted by an explicit table per
LOINC code: each analyte's units with the factor to one base unit (value x factor = the
value in the base unit). A unit not in its code's row stays unconvertible, and the
criterion stays "unknown" (needs review), as before. Linear factors only: no HbA1c %
to mmol/mol (an offset), no enzyme activity units.

Factors from the molar masses: glucose 180.16 g/mol, creatinine 113.12 g/mol,
cholesterol 386.65 g/mol, triglycerides (as triolein) 885.4 g/mol."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

LOINC = "http://loinc.org"

_GLUCOSE = {"mg/dL": 1.0, "mg/L": 0.1, "mmol/L": 18.016}
_CREATININE = {"mg/dL": 1.0, "mg/L": 0.1, "umol/L": 1 / 88.42, "mmol/L": 1000 / 88.42}
_CHOLESTEROL = {"mg/dL": 1.0, "mmol/L": 38.665}
_TRIGLYCERIDES = {"mg/dL": 1.0, "mmol/L": 88.54}
_HAEMOGLOBIN = {"g/dL": 1.0, "g/L": 0.1, "mg/dL": 0.001}

# LOINC code -> (analyte, unit -> factor to its base unit)
TABLE: Mapping[str, tuple[str, Mapping[str, float]]] = MappingProxyType(
    {
        # glucose, mass and moles per volume, serum/plasma and blood
        "2345-7": ("glucose", _GLUCOSE),
        "2339-0": ("glucose", _GLUCOSE),
        "14749-6": ("glucose", _GLUCOSE),
        "15074-8": ("glucose", _GLUCOSE),
        # creatinine, serum/plasma
        "2160-0": ("creatinine", _CREATININE),
        "14682-9": ("creatinine", _CREATININE),
        # cholesterol: total, HDL, LDL (measured and calculated)
        "2093-3": ("cholesterol", _CHOLESTEROL),
        "14647-2": ("cholesterol", _CHOLESTEROL),
        "2085-9": ("cholesterol", _CHOLESTEROL),
        "14646-4": ("cholesterol", _CHOLESTEROL),
        "2089-1": ("cholesterol", _CHOLESTEROL),
        "13457-7": ("cholesterol", _CHOLESTEROL),
        "22748-8": ("cholesterol", _CHOLESTEROL),
        # triglycerides
        "2571-8": ("triglycerides", _TRIGLYCERIDES),
        "14927-8": ("triglycerides", _TRIGLYCERIDES),
        # haemoglobin, blood
        "718-7": ("haemoglobin", _HAEMOGLOBIN),
    }
)


def units_of(system: str, code: str) -> tuple[str, ...]:
    """The units a result of this code can be converted from or to (none: not in the table)."""
    if system != LOINC or code not in TABLE:
        return ()
    return tuple(TABLE[code][1])


def factor(system: str, code: str, unit: str, to: str) -> float | None:
    """What multiplies a value of `code` in `unit` to give it in `to` (1.0: the same unit;
    None: no conversion known)."""
    if unit == to:
        return 1.0
    row = TABLE.get(code) if system == LOINC else None
    if row is None or unit not in row[1] or to not in row[1]:
        return None
    return row[1][unit] / row[1][to]
