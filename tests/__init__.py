"""The test suite. In-process code meets aiogram as the program does: its models built when first
used (ingest/aiogram_on_demand.py), installed here, before any test module imports aiogram."""

from ingest import aiogram_on_demand

aiogram_on_demand.install()
