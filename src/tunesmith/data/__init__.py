"""Reading, splitting and measuring data."""
