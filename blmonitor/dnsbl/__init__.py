"""Checking addresses and domains against DNS blocklists.

The zone catalog, answers to verdicts (pure), the resolver (the only DNS I/O), the engine,
the report and public-IP discovery.
"""
