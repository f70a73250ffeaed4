"""Drift monitoring with Evidently: declaring reports, running them, summarising them."""
