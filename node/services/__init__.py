"""Services: plain functions over a database connection, called by routes, workers and
the command line."""
