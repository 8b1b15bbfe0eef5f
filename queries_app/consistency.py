"""Consistency levels: every query declares one, and the API documents it."""

from enum import Enum


class Consistency(str, Enum):
    STRONG = "STRONG"
    EVENTUAL = "EVENTUAL"
    HIGHLY_EVENTUAL = "HIGHLY_EVENTUAL"
