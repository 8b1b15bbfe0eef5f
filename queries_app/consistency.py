"""Consistency levels: every query declares one, and the API documents it."""

from enum import StrEnum


class Consistency(StrEnum):
    STRONG = "STRONG"
    EVENTUAL = "EVENTUAL"
    HIGHLY_EVENTUAL = "HIGHLY_EVENTUAL"
