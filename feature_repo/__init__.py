"""The Feast feature repository and the small online-features API serving and streaming use."""
