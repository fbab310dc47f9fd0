"""Ingestion: read input files into Papers (`ingest.readers`), normalise and de-duplicate them (`ingest.normalize`)."""
