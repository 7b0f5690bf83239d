"""The sync engine: plain Python, no Dagster. See sync.SyncEngine."""
