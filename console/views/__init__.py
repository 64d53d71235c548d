"""Operator screens, one module per screen."""
