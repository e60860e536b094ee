"""orderflow: a made-to-order manufacturer's order platform with a Redis caching layer."""

__version__ = "0.1.0"
