"""The pages people read in a browser, in French or English."""
