"""Page scripts run by `ui/app.py`'s navigation; each is a thin call into `ui.views`."""
