"""Offline evaluation: run an evaluation set through the bot as a user would, measure, report.

`dataset` reads and validates sets, `runner` drives the bot, `metrics` and `judge` score the
replies, `report` draws them, `compare` puts runs side by side. See evals/README.md.
"""
