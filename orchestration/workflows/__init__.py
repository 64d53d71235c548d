"""Built-in workflow definitions."""
