"""Pure metric functions and report writers."""
