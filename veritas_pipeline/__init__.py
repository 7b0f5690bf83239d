"""veritas_pipeline: keep a discovery-driven Nautobot (VeritasBot) supplied with production's non-discoverable data."""
