"""Dictionaries shipped with crnn (one symbol per line, blank never listed)."""
