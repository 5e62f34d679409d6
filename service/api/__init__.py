"""The API surfaces, one folder each: its routes, models, code table and error shape."""
