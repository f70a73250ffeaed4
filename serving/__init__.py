"""The recommendation service: a plain-Python core with MLServer (V2) and seldon-core v1 faces."""
