"""The big receivers' own view of us: Microsoft SNDS and Gmail Postmaster Tools.

Each source is polled at most a few times a day (its data is daily) and comes back as one
`SourceResult` (models.py): the provider-private listings that cover our addresses, the daily
reputation records, and — when the source could not be read — why, so that a source that could
not look never ends a listing nor calls anything clean.
"""
