"""A module of the probe's project folder; test_execution rewrites it between runs."""

VALUE = "as shipped"
