"""Dyad: sourced facts about the relations between pairs of countries."""
