"""The online paths' shared parts: Redis keys and clients, bearer keys, request log."""
