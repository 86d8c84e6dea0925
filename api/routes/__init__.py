"""Route tables; api.app registers each at /path and /api/path."""
