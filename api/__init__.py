"""alloop's HTTP API: classification with the promoted model, the model registry, health and
metrics. Build it with :func:`api.app.create_app`; run it with :func:`api.server.serve`."""
