"""``python -m gateway``: see ``python -m gateway --help`` (mail outbox: mail/ beside the db)."""

from gateway.cli import main

raise SystemExit(main())
