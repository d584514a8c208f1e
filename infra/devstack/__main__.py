"""``python -m infra.devstack``: see :mod:`infra.devstack.main`."""

from infra.devstack.main import main

raise SystemExit(main())
