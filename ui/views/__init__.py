"""Rendering functions of the UI, one module per part of a page, so new pages can reuse them."""
