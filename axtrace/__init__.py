"""AxTrace: the same, provable response to AI alerts at every site, on Prefect 3.

Kept free of imports: flows and Prefect's block loader import parts of this package and
must not pay for the web server or the CLI.
"""

__version__ = "0.1.0"
