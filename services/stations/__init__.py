"""Stations as the feed reports them: enumerations, derived vocabularies, filters and summaries."""
