"""The library behind the feature repository: Feast definitions, opening and applying the
store, the online reads and writes serving and the stream processor use, and the batch
definition of the session features."""
