"""The HTTP face of the node: discovery, actors, the JSON API."""
