"""The HTTP and WebSocket API: route tables of small handlers, in ComfyUI's shapes."""
