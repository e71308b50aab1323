"""The ledger's schema migrations (Alembic), run by :mod:`kedacore.ledger.migrate`.

``env.py`` is Alembic's environment, ``versions/`` the revisions (not a package: Alembic loads
them by path), ``script.py.mako`` the template of a new one. There is no ``alembic.ini``: the
configuration is built in code (``migrate.config``). docs/ledger.md says how to add a revision.
"""
