"""The real-time event path: collector -> bus -> session-feature processor and lake sink."""
