"""The web layer: the chat and its embeddable widget, the JSON API, and the controls around them.

app.py assembles these into one FastAPI server; nothing here retrieves or generates: every
answer comes from `bot.pipeline.CrampBot`.
"""
