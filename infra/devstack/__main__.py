"""``python -m infra.devstack``: see :mod:`infra.devstack.main`."""

from infra.devstack.main import exit_now, main

exit_now(main())
