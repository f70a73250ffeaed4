"""Data: the lake, the event schema, event datasets, quarantine, snapshots, readers."""
