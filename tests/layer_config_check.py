"""Shared test helper: a layer's config survives JSON and rebuilds an equal layer."""
import json


def round_trip(layer):
    config = layer.get_config()
    json.dumps(config)
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    return clone
