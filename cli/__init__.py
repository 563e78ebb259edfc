"""The `imgpipe` command and the local stack: tools above every layer, imported by nothing.

``main`` builds the command line from ``commands/`` (one module a subcommand); ``local/`` is
the whole pipeline on one machine (embedded AWS, worker, CDN stand-in, OIDC issuer, gallery).
Neither Lambda image copies this package.
"""
