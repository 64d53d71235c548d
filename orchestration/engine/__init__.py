"""The engine core: pure Python, no Django, Celery or Channels (a test checks this)."""
