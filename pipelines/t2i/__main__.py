"""`python -m pipelines.t2i`: see `pipelines.t2i.cli`."""

from .cli import main

raise SystemExit(main())
