"""Reasoning models: settings (``settings``), the parser picked from a model folder (``auto``), a thinking budget
that still answers (``forced``), and a thinking variant of the smoke model for tests (``thinking_model``)."""
