"""Helpers for the profile and timing stages: scopes, op categories, statistics, sweep."""
