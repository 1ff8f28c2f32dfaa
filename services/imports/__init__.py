"""Batch creation of accounts from a CSV file (SPEC §6): upload, check every row, confirm, write
every row in one transaction, then send each new account its message if asked.

The file is read and its header checked while the person waits (`reader`); the rows are checked
(`checker`, which holds them to services/account_rules.py) and later written by the worker, as one
background job whose phase says which step comes next (`job`). The views call `service`, re-exported
here: `from services import imports; imports.start(...)`."""

from services.imports.job import KIND, SEND_OPTIONS, Phase, run
from services.imports.reader import (
    COLUMN_NAMES,
    COLUMNS,
    FORMULA_STARTS,
    MAX_BYTES,
    MAX_ROWS,
    NUMBER_COLUMNS,
)
from services.imports.service import confirm, error_report, get_visible, progress_of, recent, stage, start

__all__ = ["COLUMNS", "COLUMN_NAMES", "FORMULA_STARTS", "KIND", "MAX_BYTES", "MAX_ROWS", "NUMBER_COLUMNS",
           "Phase", "SEND_OPTIONS", "confirm", "error_report", "get_visible", "progress_of", "recent", "run",
           "stage", "start"]
