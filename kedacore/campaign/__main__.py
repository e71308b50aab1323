"""``python -m kedacore.campaign …``: the command line of :mod:`kedacore.campaign.cli`."""

from kedacore.campaign.cli import main

raise SystemExit(main())
