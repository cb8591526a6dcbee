"""The ActivityPub protocol, independent of any application: it never imports ``node``."""
