"""What the three faces' pages share: templates, HTML errors, static files, the cache dashboard."""
