"""Finding the cause of a listing before asking for delisting.

The mail queue, the MTA logs, the open-relay test and the diagnosis that weighs them (pure).
"""
