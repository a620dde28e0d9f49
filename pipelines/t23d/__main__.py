"""`python -m pipelines.t23d`: see `pipelines.t23d.cli`."""

from .cli import main

raise SystemExit(main())
